"""TFLite's integer arithmetic in Python integers, for `export --format c`: what the generated C computes at run
time is fixed here at export time (multipliers, shifts, folded constants, the softmax exp table).

The definitions follow TFLite's documented reference semantics (double-rounding MultiplyByQuantizedMultiplier,
gemmlowp's fixed-point exp and reciprocal); the generated code is checked bit for bit against TFLite Micro's
interpreter, so a difference in any of these shows as a failed export.
"""

from __future__ import annotations

import math

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
SOFTMAX_DIFF_BITS = 5  # softmax's input differences are Q5.26
SOFTMAX_ACCUM_BITS = 12  # and the sum of exps Q12.19


def wrap32(x: int) -> int:
    """Two's-complement int32 wrap-around (what C's int32 arithmetic does on every target here)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_half_away(x: float) -> int:
    """C's round(): halves away from zero (numpy's round goes to even)."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """A real multiplier as (Q0.31 significand, power-of-two exponent), as TFLite's QuantizeMultiplier."""
    if real == 0.0:
        return 0, 0
    significand, shift = math.frexp(real)
    q = round_half_away(significand * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32, rounded to nearest (ties away from zero)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    total = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return wrap32(abs(total) >> 31 if total >= 0 else -(abs(total) >> 31))  # C's division truncates to zero


def rdbpot(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: x / 2**exponent, rounded to nearest, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding): x * multiplier * 2**shift / 2**31."""
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(wrap32(x * (1 << left)), multiplier), right)


def saturating_shift_left(x: int, exponent: int) -> int:
    """gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent."""
    threshold = (1 << (31 - exponent)) - 1
    return INT32_MAX if x > threshold else INT32_MIN if x < -threshold else x << exponent


def constant(value: float, integer_bits: int) -> int:
    """A real number as a raw fixed-point int32 with `integer_bits` integer bits."""
    return round_half_away(value * (1 << (31 - integer_bits)))


def _exp_quarter_interval(a: int) -> int:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8."""
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(srdhm(x4_over_4 + x3, constant(1 / 3, 0)) + x2, 1)
    term = constant(math.exp(-1 / 8), 0)
    return wrap32(term + srdhm(term, wrap32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int = SOFTMAX_DIFF_BITS) -> int:
    """exp(a) for a <= 0 given with `integer_bits` integer bits, as Q0.31 (gemmlowp's barrel-shifter method)."""
    fractional = 31 - integer_bits
    quarter = 1 << (fractional - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_quarter_interval(saturating_shift_left(a_mod_quarter_minus_quarter, integer_bits))
    remainder = wrap32(a_mod_quarter_minus_quarter - a)
    for exponent in range(-2, 5):
        if integer_bits > exponent and remainder & (1 << (fractional + exponent)):
            result = srdhm(result, constant(math.exp(-(2.0 ** exponent)), 0))
    return INT32_MAX if a == 0 else result


def softmax_exp_table(input_scale: float, beta: float = 1.0) -> list[int]:
    """exp of every int8 input difference 0, -1, ..., -255 from the row's maximum, Q0.31, as TFLite's int8
    softmax computes it (0 where the difference is below its cut-off, which TFLite skips: the same result)."""
    real = min(beta * input_scale * (1 << (31 - SOFTMAX_DIFF_BITS)), float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError(f"softmax input scale {input_scale} is too small for TFLite's int8 softmax")
    radius = math.floor(((1 << SOFTMAX_DIFF_BITS) - 1) * (1 << (31 - SOFTMAX_DIFF_BITS)) / (1 << left_shift))
    table = []
    for diff in range(0, -256, -1):
        rescaled = srdhm(wrap32(diff * (1 << left_shift)), multiplier)
        table.append(exp_on_negative_values(rescaled) if diff >= -radius else 0)
    return table
