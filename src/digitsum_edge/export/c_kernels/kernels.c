/* ---- Kernels: TFLite's int8 arithmetic (int32 accumulation, per-channel fixed-point requantisation, zero points,
 * clamping) in C99. On a core with the Arm DSP extension (__ARM_FEATURE_DSP: Cortex-M4, M7, M33, M55) the
 * convolutions multiply two int16 pairs per instruction through ACLE intrinsics (SMLAD, SXTB16); elsewhere the
 * same sums run in plain C. Integer sums do not depend on their order, so both paths give the same bits.
 * Assumes a little-endian target and arithmetic right shifts of negative integers (every Arm and x86 compiler). */

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "digitsum_model.c packs int8 and int16 pairs for a little-endian target"
#endif
#if defined(__GNUC__)
#define DS_ALIGN4 __attribute__((aligned(4)))
#define DS_INLINE static inline __attribute__((always_inline))
#define DS_KERNEL static __attribute__((unused)) /* a model may not need every kernel */
#else
#define DS_ALIGN4
#define DS_INLINE static inline
#define DS_KERNEL static
#endif
#ifndef DIGITSUM_LAYER_HOOK
#define DIGITSUM_LAYER_HOOK(name) ((void)0) /* firmware may define it to time each step (see docs/mcu.md) */
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
DS_INLINE uint32_t ds_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
DS_INLINE uint32_t ds_sxtb16_ror8(uint32_t x) { /* SXTB16 with its rotation: one instruction */
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
DS_INLINE int32_t ds_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int32_t)a, (int32_t)b, acc); }
DS_INLINE uint32_t ds_sadd16(uint32_t a, uint32_t b) { return (uint32_t)__sadd16((int32_t)a, (int32_t)b); }
#else
/* bytes 0 and 2 (1 and 3 for _ror8) sign-extended into two int16 halves; smlad: acc + lo*lo + hi*hi */
DS_INLINE uint32_t ds_sxtb16(uint32_t x) {
    return (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFFu) | (uint32_t)(uint16_t)(int16_t)(int8_t)(x >> 16 & 0xFFu) << 16;
}
DS_INLINE uint32_t ds_sxtb16_ror8(uint32_t x) { return ds_sxtb16(x >> 8 | x << 24); }
DS_INLINE int32_t ds_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return acc + (int32_t)(int16_t)(a & 0xFFFFu) * (int16_t)(b & 0xFFFFu) + (int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16);
}
DS_INLINE uint32_t ds_sadd16(uint32_t a, uint32_t b) { /* two int16 additions, each wrapping in its half */
    return (((a & 0xFFFFu) + (b & 0xFFFFu)) & 0xFFFFu) | ((a >> 16) + (b >> 16)) << 16;
}
#endif

/* unaligned-safe 32-bit loads and stores: one LDR/STR (GCC's builtin also under -ffreestanding, where memcpy is a call) */
#if defined(__GNUC__)
DS_INLINE uint32_t ds_load32(const void *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
DS_INLINE void ds_store32(void *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
#else
DS_INLINE uint32_t ds_load32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
DS_INLINE void ds_store32(void *p, uint32_t v) { memcpy(p, &v, 4); }
#endif

/* SaturatingRoundingDoublingHighMul: a * b / 2^31 to nearest. Its definition adds +-2^30 by the sign and
 * truncates toward zero; that equals adding 2^30 and flooring (ties toward +infinity): no branch, no division */
DS_INLINE int32_t ds_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    return (int32_t)(((int64_t)a * b + (1 << 30)) >> 31);
}

/* RoundingDivideByPOT: x / 2^e to nearest, ties away from zero (e in 0..31) */
DS_INLINE int32_t ds_rdbpot(int32_t x, int e) {
    const int32_t mask = (int32_t)((1u << e) - 1u);
    const int32_t remainder = x & mask, threshold = (mask >> 1) + (x < 0);
    return (x >> e) + (remainder > threshold);
}

/* MultiplyByQuantizedMultiplier: x * m * 2^s / 2^31 (m a Q0.31 significand) */
DS_INLINE int32_t ds_mbqm(int32_t x, int32_t m, int32_t s) {
    return s > 0 ? ds_srdhm((int32_t)((uint32_t)x << s), m) : ds_rdbpot(ds_srdhm(x, m), -s);
}

/* ds_mbqm for a non-negative multiplier and an input small enough that nothing here overflows (export checks the
 * accumulators' bound): the shift split into left, right and the rounding term ahead of time. For x = a * 2^-e,
 * e >= 1, (x + 2^(e-1) - (x < 0)) >> e rounds half away from zero as RoundingDivideByPOT does */
typedef struct { int32_t m, round; int16_t left, right; } ds_rq_t;

DS_INLINE ds_rq_t ds_rq_make(int32_t m, int32_t s) {
    ds_rq_t q;
    q.m = m;
    q.left = (int16_t)(s > 0 ? s : 0);
    q.right = (int16_t)(s > 0 ? 0 : -s);
    q.round = q.right ? 1 << (q.right - 1) : 0;
    return q;
}

DS_INLINE int32_t ds_rq(int32_t x, ds_rq_t q) {
    const int32_t y = (int32_t)(((int64_t)(int32_t)((uint32_t)x << q.left) * q.m + (1 << 30)) >> 31);
    return (y + q.round - ((y < 0) & (q.right > 0))) >> q.right;
}

DS_INLINE int8_t ds_clamp(int32_t v, int32_t lo, int32_t hi) { return (int8_t)(v < lo ? lo : v > hi ? hi : v); }

typedef struct {
    int16_t h, w, cin, oh, ow, cout, kh, kw, sh, sw, pad_top, pad_left, k, kp;
    int16_t grouped; /* 1: cin % 4 == 0, im2col keeps each 4 inputs as (x0 x2)(x1 x3), weights stay in order;
                        0: im2col in order, each 4 weights stored w0 w2 w1 w3 -- either way SXTB16 pairs them */
    int32_t in_off, out_off, act_min, act_max;
    const int8_t *weights; /* [cout][kp], kp = k rounded up to 4 with zero weights */
    const int32_t *bias;
    const ds_rq_t *rq; /* per output channel */
} ds_conv_t;

/* The im2col buffer holds two output pixels' receptive fields interleaved by groups of four, A0-3 B0-3 A4-7
 * B4-7 ..., so that the inner loop walks one pointer. DS_AT: value n of a pixel's row at base (col or col + 4) */
#define DS_AT(base, n) ((base) + (((n) >> 2) << 3) + ((n) & 3))

/* n inputs (n % 4 == 0, starting at a group) widened 4 at a time: one load, two SXTB16, two SADD16, two stores,
 * as (x0 x2)(x1 x3) */
DS_INLINE void ds_widen_grouped(const int8_t *p, int n, uint32_t offsets, int16_t *group) {
    int c;
    for (c = 0; c < n; c += 4, group += 8) {
        const uint32_t x = ds_load32(p + c);
        ds_store32(group, ds_sadd16(ds_sxtb16(x), offsets));
        ds_store32(group + 2, ds_sadd16(ds_sxtb16_ror8(x), offsets));
    }
}

/* One output pixel's receptive field as int16 (input + input offset), zero where the padding is. Inside the
 * image a row of the window is kw * cin consecutive inputs (NHWC) */
DS_KERNEL void ds_im2col(const int8_t *in, const ds_conv_t *L, int oy, int ox, int16_t *base) {
    const int h = L->h, w = L->w, cin = L->cin, kh = L->kh, kw = L->kw, off = L->in_off, row = kw * cin;
    const int y0 = oy * L->sh - L->pad_top, x0 = ox * L->sw - L->pad_left, grouped = L->grouped;
    const uint32_t offsets = (uint32_t)(uint16_t)off * 0x10001u;
    const int inside = y0 >= 0 && x0 >= 0 && y0 + kh <= h && x0 + kw <= w;
    int ky, kx, c, n = 0;
    for (ky = 0; ky < kh; ky++) {
        const int iy = y0 + ky;
        for (kx = 0; kx < kw; kx++) {
            const int ix = x0 + kx, count = inside ? row : cin; /* inside: the whole row in one go */
            if (!inside && (iy < 0 || iy >= h || ix < 0 || ix >= w)) {
                for (c = 0; c < cin; c++, n++) *DS_AT(base, n) = 0;
            } else if (grouped) {
                ds_widen_grouped(in + (iy * w + ix) * cin, count, offsets, DS_AT(base, n));
                n += count;
            } else {
                const int8_t *p = in + (iy * w + ix) * cin;
                for (c = 0; c < count; c++, n++) *DS_AT(base, n) = (int16_t)(p[c] + off);
            }
            if (inside) break;
        }
    }
    for (; n < L->kp; n++) *DS_AT(base, n) = 0;
}

DS_INLINE int8_t ds_requant(int32_t acc, ds_rq_t q, int32_t off, int32_t lo, int32_t hi) {
    return ds_clamp(ds_rq(acc, q) + off, lo, hi);
}

/* Convolution, NHWC int8: two output pixels by two output channels at a time (each weight and input pair
 * loaded once for two multiply-accumulates), requantised once per output */
DS_KERNEL void ds_conv(const int8_t *in, int8_t *out, const ds_conv_t *L, int16_t *col) {
    const int npix = L->oh * L->ow, ow = L->ow, kp = L->kp, cout = L->cout;
    const int32_t off = L->out_off, lo = L->act_min, hi = L->act_max;
    const int32_t *bias = L->bias;
    const ds_rq_t *rq = L->rq;
    int p, co, i;
    for (p = 0; p < npix; p += 2) {
        const int two = p + 1 < npix, q = two ? p + 1 : p; /* an odd last pixel fills both halves */
        int8_t *oa = out + p * cout, *ob = oa + cout;
        ds_im2col(in, L, p / ow, p % ow, col);
        ds_im2col(in, L, q / ow, q % ow, col + 4);
        for (co = 0; co + 2 <= cout; co += 2) {
            const int8_t *w0 = L->weights + co * kp, *w1 = w0 + kp;
            const int16_t *x = col;
            int32_t a00 = bias[co], a01 = a00, a10 = bias[co + 1], a11 = a10;
            for (i = kp >> 2; i > 0; i--, x += 8) {
                const uint32_t u0 = ds_load32(w0), u1 = ds_load32(w1);
                const uint32_t lo0 = ds_sxtb16(u0), hi0 = ds_sxtb16_ror8(u0);
                const uint32_t lo1 = ds_sxtb16(u1), hi1 = ds_sxtb16_ror8(u1);
                uint32_t v = ds_load32(x);
                a00 = ds_smlad(lo0, v, a00); a10 = ds_smlad(lo1, v, a10);
                v = ds_load32(x + 2);
                a00 = ds_smlad(hi0, v, a00); a10 = ds_smlad(hi1, v, a10);
                v = ds_load32(x + 4);
                a01 = ds_smlad(lo0, v, a01); a11 = ds_smlad(lo1, v, a11);
                v = ds_load32(x + 6);
                a01 = ds_smlad(hi0, v, a01); a11 = ds_smlad(hi1, v, a11);
                w0 += 4; w1 += 4;
            }
            oa[co] = ds_requant(a00, rq[co], off, lo, hi);
            oa[co + 1] = ds_requant(a10, rq[co + 1], off, lo, hi);
            if (two) {
                ob[co] = ds_requant(a01, rq[co], off, lo, hi);
                ob[co + 1] = ds_requant(a11, rq[co + 1], off, lo, hi);
            }
        }
        for (; co < cout; co++) { /* an odd last channel */
            const int8_t *w0 = L->weights + co * kp;
            const int16_t *x = col;
            int32_t a0 = bias[co], a1 = a0;
            for (i = kp >> 2; i > 0; i--, x += 8, w0 += 4) {
                const uint32_t u = ds_load32(w0), l = ds_sxtb16(u), h = ds_sxtb16_ror8(u);
                a0 = ds_smlad(h, ds_load32(x + 2), ds_smlad(l, ds_load32(x), a0));
                a1 = ds_smlad(h, ds_load32(x + 6), ds_smlad(l, ds_load32(x + 4), a1));
            }
            oa[co] = ds_requant(a0, rq[co], off, lo, hi);
            if (two) ob[co] = ds_requant(a1, rq[co], off, lo, hi);
        }
    }
}

typedef struct { int16_t h, w, c, oh, ow, fh, fw, sh, sw, pad_top, pad_left; int32_t act_min, act_max; } ds_pool_t;

DS_INLINE int8_t ds_max8(int8_t a, int8_t b) { return a > b ? a : b; }

DS_KERNEL void ds_maxpool(const int8_t *in, int8_t *out, const ds_pool_t *L) {
    const int h = L->h, w = L->w, c = L->c, oh = L->oh, ow = L->ow;
    const int32_t lo = L->act_min, hi = L->act_max;
    int oy, ox, fy, fx, k;
    if (L->fh == 2 && L->fw == 2 && L->sh == 2 && L->sw == 2 && L->pad_top == 0 && L->pad_left == 0) {
        for (oy = 0; oy < oh; oy++) { /* the common 2x2 window, stride 2, no padding */
            for (ox = 0; ox < ow; ox++) {
                const int8_t *p = in + (2 * oy * w + 2 * ox) * c, *q = p + w * c;
                for (k = 0; k < c; k++)
                    *out++ = ds_clamp(ds_max8(ds_max8(p[k], p[k + c]), ds_max8(q[k], q[k + c])), lo, hi);
            }
        }
        return;
    }
    for (oy = 0; oy < oh; oy++) {
        for (ox = 0; ox < ow; ox++) {
            int8_t *o = out + (oy * ow + ox) * c;
            const int y0 = oy * L->sh - L->pad_top, x0 = ox * L->sw - L->pad_left;
            for (k = 0; k < c; k++) o[k] = -128;
            for (fy = y0 < 0 ? -y0 : 0; fy < L->fh && y0 + fy < h; fy++) {
                for (fx = x0 < 0 ? -x0 : 0; fx < L->fw && x0 + fx < w; fx++) {
                    const int8_t *p = in + ((y0 + fy) * w + x0 + fx) * c;
                    for (k = 0; k < c; k++) o[k] = ds_max8(o[k], p[k]);
                }
            }
            for (k = 0; k < c; k++) o[k] = ds_clamp(o[k], lo, hi);
        }
    }
}

/* activation op per-channel constant: 0 MUL (x+off)*factor[c]; 1 ADD, 2 SUB: TFLite's int8 add with a left
 * shift of 20, factor[c] the constant's rescaled side (worked out at export). Channel by channel, so that each
 * channel's constants stay in registers */
typedef struct {
    int32_t n, c, op, in_off, out_off, act_min, act_max, m_in, s_in, m_out, s_out;
    const int32_t *factor;
} ds_chan_t;

DS_KERNEL void ds_channel(const int8_t *in, int8_t *out, const ds_chan_t *L) {
    const int n = L->n, c = L->c, op = L->op;
    const int32_t in_off = L->in_off, out_off = L->out_off, lo = L->act_min, hi = L->act_max;
    const ds_rq_t q_in = ds_rq_make(L->m_in, L->s_in), q_out = ds_rq_make(L->m_out, L->s_out);
    int p, k;
    for (k = 0; k < c; k++) {
        const int32_t f = L->factor[k];
        const int8_t *x = in + k;
        int8_t *y = out + k;
        if (op == 0) {
            for (p = 0; p < n; p++, x += c, y += c) *y = ds_clamp(ds_rq((*x + in_off) * f, q_out) + out_off, lo, hi);
        } else {
            const int32_t sign = op == 1 ? 1 : -1, g = sign * f;
            for (p = 0; p < n; p++, x += c, y += c) {
                const int32_t a = ds_rq((*x + in_off) * (1 << 20), q_in);
                *y = ds_clamp(ds_rq(a + g, q_out) + out_off, lo, hi);
            }
        }
    }
}

/* a chain of per-channel steps folded at export into one table per channel: y = table[c][x + 128] */
DS_KERNEL void ds_channel_table(const int8_t *in, int8_t *out, int n, int c, const int8_t *table) {
    int p, k;
    for (p = 0; p < n; p++, in += c, out += c)
        for (k = 0; k < c; k++) out[k] = table[k * 256 + in[k] + 128];
}

/* maximum over the pixels of each channel: (n, c) -> (c) */
DS_KERNEL void ds_global_max(const int8_t *in, int8_t *out, int n, int c) {
    int p, k;
    for (k = 0; k < c; k++) out[k] = -128;
    for (p = 0; p < n; p++, in += c)
        for (k = 0; k < c; k++) if (in[k] > out[k]) out[k] = in[k];
}

typedef struct {
    int16_t n_in, n_out;
    int32_t in_off, out_off, act_min, act_max;
    const int8_t *weights; /* [n_out][n_in] */
    const int32_t *bias, *mult, *shift;
} ds_fc_t;

DS_KERNEL void ds_fc(const int8_t *in, int8_t *out, const ds_fc_t *L) {
    int o, i;
    for (o = 0; o < L->n_out; o++) {
        const int8_t *w = L->weights + o * L->n_in;
        int32_t acc = L->bias[o];
        for (i = 0; i < L->n_in; i++) acc += (in[i] + L->in_off) * w[i];
        out[o] = ds_clamp(ds_mbqm(acc, L->mult[o], L->shift[o]) + L->out_off, L->act_min, L->act_max);
    }
}

DS_INLINE int32_t ds_shift_left_saturating(int32_t x, int e) {
    const int32_t threshold = (int32_t)((1u << (31 - e)) - 1u);
    return x > threshold ? INT32_MAX : x < -threshold ? INT32_MIN : (int32_t)((uint32_t)x << e);
}

/* 1 / (1 + a) for a in [0, 1), Q0.31: Newton-Raphson in Q2.29 from 48/17 - 32/17 * d (gemmlowp's method) */
DS_KERNEL int32_t ds_one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 /* 48/17 */ + ds_srdhm(half_denominator, -1010580540 /* -32/17 */);
    int i;
    for (i = 0; i < 3; i++) {
        const int32_t one_minus = (1 << 29) - ds_srdhm(half_denominator, x);
        x += ds_shift_left_saturating(ds_srdhm(x, one_minus), 2);
    }
    return ds_shift_left_saturating(x, 1);
}

/* int8 softmax to scale 1/256, zero point -128: exp of (x - max) from a table made at export (Q0.31), the sum
 * in Q12.19, its reciprocal in fixed point, as TFLite's reference softmax */
DS_KERNEL void ds_softmax(const int8_t *in, int8_t *out, int n, const int32_t *exp_table) {
    int32_t max = -128, sum = 0, scale, shifted;
    int c, headroom = 0, exponent;
    for (c = 0; c < n; c++) if (in[c] > max) max = in[c];
    for (c = 0; c < n; c++) sum += ds_rdbpot(exp_table[max - in[c]], 12);
    while (headroom < 32 && !((uint32_t)sum & (0x80000000u >> headroom))) headroom++;
    shifted = (int32_t)(((uint32_t)sum << headroom) - 0x80000000u);
    scale = ds_one_over_one_plus_x(shifted);
    exponent = (12 - headroom) + 31 - 8;
    for (c = 0; c < n; c++)
        out[c] = ds_clamp(ds_rdbpot(ds_srdhm(scale, exp_table[max - in[c]]), exponent) - 128, -128, 127);
}

typedef struct { int16_t d, r; int32_t a_off, b_off, m, s, out_off, act_min, act_max; } ds_outer_t;

/* (d) x (r) -> (d, r): every product requantised, TFLite's int8 MUL with broadcasting */
DS_KERNEL void ds_outer(const int8_t *a, const int8_t *b, int8_t *out, const ds_outer_t *L) {
    int i, j;
    for (i = 0; i < L->d; i++)
        for (j = 0; j < L->r; j++)
            *out++ = ds_clamp(ds_mbqm((a[i] + L->a_off) * (b[j] + L->b_off), L->m, L->s) + L->out_off,
                              L->act_min, L->act_max);
}
