"""`export --format c`, step 1: the int8 .tflite's graph -> a list of typed steps with every constant the C code
needs (weights, biases, per-channel multipliers and shifts, zero points, clamping ranges, the softmax exp table).

Activations stay NHWC int8 as in TFLite. Each operator kind the project's int8 model holds maps to one step:
CONV_2D and DEPTHWISE_CONV_2D with one input channel -> Conv; MAX_POOL_2D -> MaxPool; SUB/MUL/ADD of an activation
and a per-channel constant (the BatchNorm that pooling keeps out of the conv) -> ChannelOp; TRANSPOSE, DEQUANTIZE,
REDUCE_MAX, QUANTIZE (the global max-pool the quantizer leaves in float) -> GlobalMax; FULLY_CONNECTED; SOFTMAX;
EMBEDDING_LOOKUP of rand in a float table, then QUANTIZE -> OneHot; MUL of two activations -> OuterMul; RESHAPE is
free (TFLite tensors are flat and row-major). Anything else is an error naming the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.errors import DigitsumError
from digitsum_edge.export.fixedpoint import quantize_multiplier, round_half_away, softmax_exp_table


@dataclass
class Step:
    kind: str  # conv, maxpool, channel, globalmax, fc, softmax, onehot, outer
    src: int  # tensor index read (-1: none)
    dst: int  # tensor index written
    p: dict[str, Any] = field(default_factory=dict)  # ints and numpy arrays, named as the C kernel's arguments
    src2: int = -1  # the second activation of OuterMul
    layer: str = ""  # which layer of the network, for the per-layer figures


@dataclass
class Graph:
    steps: list[Step]
    sizes: dict[int, int]  # bytes of every int8 activation tensor a step writes
    image: int  # graph input tensors and output tensors
    rand: int
    digit: int
    sum: int
    image_quant: tuple[float, int]
    digit_quant: tuple[float, int]
    sum_quant: tuple[float, int]
    operators: list[str]  # the builtin operator kinds the file holds


def _names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


class _Reader:
    """The first subgraph of a .tflite flatbuffer, with tensor values and quantisation at hand."""

    def __init__(self, data: bytes, source: str):
        from ai_edge_litert import schema_py_generated as schema

        self.model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
        self.data, self.source = data, source
        self.sg = self.model.subgraphs[0]
        names = _names()
        self.kinds = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), str(c.builtinCode))
                      for c in self.model.operatorCodes]

    def shape(self, t: int) -> list[int]:
        return [int(d) for d in self.sg.tensors[t].shape]

    def quant(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.sg.tensors[t].quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            raise self.error(f"tensor {self.name(t)} has no quantisation")
        return np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint, np.int64)

    def qparams(self, t: int) -> tuple[float, int]:
        scale, zero = self.quant(t)
        return float(scale[0]), int(zero[0])

    def const(self, t: int) -> np.ndarray | None:
        tensor = self.sg.tensors[t]
        buffer = self.model.buffers[tensor.buffer]
        if buffer.offset and buffer.offset > 1:
            raw = np.frombuffer(self.data[buffer.offset:buffer.offset + buffer.size], np.uint8)
        elif buffer.data is not None and len(buffer.data):
            raw = np.asarray(buffer.data, np.uint8)
        else:
            return None
        dtype = {0: np.float32, 2: np.int32, 9: np.int8, 4: np.int64}.get(tensor.type)
        if dtype is None:
            raise self.error(f"constant {self.name(t)} has an unsupported type {tensor.type}")
        return raw.view(dtype).reshape(self.shape(t))

    def name(self, t: int) -> str:
        return self.sg.tensors[t].name.decode(errors="replace")

    def error(self, what: str) -> DigitsumError:
        return DigitsumError(f"{self.source}: {what}; --format c takes the int8 .tflite that "
                             "`export --format litert-int8` writes")


def _activation_range(act: int, scale: float, zero: int) -> tuple[int, int]:
    """Clamping range of a fused activation on int8 (NONE, RELU, RELU_N1_TO_1, RELU6)."""
    def q(x: float) -> int:
        return zero + round_half_away(float(np.float32(x) / np.float32(scale)))

    low, high = {0: (-128, 127), 1: (q(0.0), 127), 2: (q(-1.0), q(1.0)), 3: (q(0.0), q(6.0))}[act]
    return max(low, -128), min(high, 127)


def _multipliers(in_scale: float, w_scales: np.ndarray, out_scale: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel (significand, shift) of input_scale * weight_scale / output_scale, in double."""
    scales = np.broadcast_to(w_scales, (n,))
    pairs = [quantize_multiplier(float(in_scale) * float(s) / float(out_scale)) for s in scales]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


def _padding(size: int, k: int, stride: int, same: bool) -> tuple[int, int]:
    """(output size, padding before) as TFLite computes them for SAME (0) and VALID (1)."""
    out = (size + stride - 1) // stride if same else (size - k) // stride + 1
    return out, max((out - 1) * stride + k - size, 0) // 2


def read_graph(data: bytes, source: str) -> Graph:
    """The project's int8 .tflite -> steps; one clear error for anything the C code does not implement."""
    from digitsum_edge.engine.litert import read_contract, subgraphs

    info = read_contract(data, source)
    if info.precision != "int8" or subgraphs(data) != 1:
        raise DigitsumError(f"{source} is not the project's int8 model (precision {info.precision}, "
                            f"{subgraphs(data)} signatures); --format c takes the model.int8.tflite that "
                            "`export --format litert-int8` writes")
    r = _Reader(data, source)
    ins, outs = list(r.sg.inputs), list(r.sg.outputs)
    size = info.input_size
    expected = [(ins[0], 9, [1, 1, size, size]), (ins[1], 2, [1]), (outs[0], 9, [1, info.num_digits]),
                (outs[1], 9, [1, info.num_sums])] if len(ins) == 2 and len(outs) == 2 else []
    if not expected or any(r.sg.tensors[t].type != dtype or r.shape(t) != shape for t, dtype, shape in expected):
        raise r.error("inputs and outputs are not int8 image, int32 rand, int8 digit and sum logits")
    steps = _steps(r, info)
    sizes = {s.dst: int(np.prod(r.shape(s.dst))) for s in steps}
    return Graph(steps, sizes, ins[0], ins[1], outs[0], outs[1], r.qparams(ins[0]), r.qparams(outs[0]),
                 r.qparams(outs[1]), sorted(set(r.kinds)))


def _steps(r: _Reader, info: onnx_contract.ModelInfo) -> list[Step]:
    ops = r.sg.operators
    alias: dict[int, int] = {}  # tensor -> the tensor whose storage it shares (RESHAPE)
    steps: list[Step] = []
    convs = 0
    done: set[int] = set()  # operators already folded into an earlier step
    i = 0
    while i < len(ops):
        op = ops[i]
        kind = r.kinds[op.opcodeIndex]
        opt = op.builtinOptions
        src = [int(t) for t in op.inputs]  # shapes come from these; memory from the tensor a RESHAPE aliases
        dst = int(op.outputs[0])
        before = len(steps)
        if kind == "RESHAPE":
            alias[dst] = alias.get(src[0], src[0])
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            convs += 1
            steps.append(_conv(r, kind, src, dst, opt, f"conv{convs}"))
        elif kind == "MAX_POOL_2D":
            steps.append(_maxpool(r, src[0], dst, opt, f"pool{convs}"))
        elif kind in ("SUB", "ADD", "MUL") and r.const(int(op.inputs[1])) is not None:
            steps.append(_channel(r, kind, src[0], int(op.inputs[1]), dst, opt.fusedActivationFunction,
                                  f"bn{convs}"))
        elif kind == "MUL":
            steps.append(_outer(r, src, dst, opt.fusedActivationFunction))
        elif kind == "TRANSPOSE":
            steps.append(_global_max(r, ops[i:i + 4], src[0]))
            i += 3
        elif kind == "FULLY_CONNECTED":
            layer = "classifier" if dst == int(r.sg.outputs[0]) else "sum_table"
            steps.append(_fc(r, src, dst, opt.fusedActivationFunction, layer))
        elif kind == "SOFTMAX":
            steps.append(_softmax(r, src[0], dst, opt.beta))
        elif kind == "EMBEDDING_LOOKUP":  # its float rows are quantised by a QUANTIZE further on
            follow = next((j for j in range(i + 1, len(ops)) if r.kinds[ops[j].opcodeIndex] == "QUANTIZE"
                           and int(ops[j].inputs[0]) == dst), None)
            if follow is None:
                raise r.error("unsupported EMBEDDING_LOOKUP: its float output is not quantised")
            steps.append(_onehot(r, op, ops[follow]))
            done.add(follow)
        elif i in done:
            pass
        else:
            raise r.error(f"unsupported operator {kind} (operator {i})")
        for step in steps[before:]:
            step.src, step.src2 = alias.get(step.src, step.src), alias.get(step.src2, step.src2)
        i += 1
    return steps


def _conv(r: _Reader, kind: str, src: list[int], dst: int, opt: Any, layer: str) -> Step:
    _, h, w, cin = r.shape(src[0])
    _, oh, ow, cout = r.shape(dst)
    weights = r.const(src[1])
    if weights is None or (opt.dilationHFactor, opt.dilationWFactor) != (1, 1):
        raise r.error(f"unsupported {kind}: dilated or with weights computed at run time")
    if kind == "DEPTHWISE_CONV_2D":  # one input channel: a convolution with [1, kh, kw, cout] weights
        if cin != 1:
            raise r.error(f"unsupported operator DEPTHWISE_CONV_2D with {cin} input channels")
        weights = weights.transpose(3, 1, 2, 0)
    kh, kw = weights.shape[1:3]
    same = opt.padding == 0
    oh2, pad_top = _padding(h, kh, opt.strideH, same)
    ow2, pad_left = _padding(w, kw, opt.strideW, same)
    if (oh2, ow2) != (oh, ow):
        raise r.error(f"{kind} output {oh}x{ow} does not follow from its padding and strides")
    (in_scale, in_zero), (out_scale, out_zero) = r.qparams(src[0]), r.qparams(dst)
    w_scales, w_zeros = r.quant(src[1])
    if np.any(w_zeros != 0):
        raise r.error(f"unsupported {kind}: weights with a zero point")
    bias = r.const(src[2]) if len(src) > 2 and src[2] >= 0 else None
    mult, shift = _multipliers(in_scale, w_scales, out_scale, cout)
    _check_bound(r, kind, weights.size // cout, bias, shift)
    low, high = _activation_range(opt.fusedActivationFunction, out_scale, out_zero)
    return Step("conv", src[0], dst, dict(
        h=h, w=w, cin=cin, oh=oh, ow=ow, cout=cout, kh=kh, kw=kw, sh=opt.strideH, sw=opt.strideW, pad_top=pad_top,
        pad_left=pad_left, weights=weights.reshape(cout, -1).astype(np.int8),
        bias=np.zeros(cout, np.int32) if bias is None else bias.astype(np.int32), mult=mult, shift=shift,
        in_off=-in_zero, out_off=out_zero, act_min=low, act_max=high), layer=layer)


def _check_bound(r: _Reader, kind: str, k: int, bias: np.ndarray | None, shift: np.ndarray) -> None:
    """The C code's fast requantisation needs |accumulator| * 2^left_shift < 2^30: true of any sensible model."""
    bound = (0 if bias is None else int(np.abs(bias.astype(np.int64)).max())) + k * 255 * 128
    if bound << max(int(shift.max()), 0) >= 1 << 30:
        raise r.error(f"unsupported {kind}: accumulators up to {bound:,} could overflow the C code's int32 rounding")


def _maxpool(r: _Reader, src: int, dst: int, opt: Any, layer: str) -> Step:
    _, h, w, c = r.shape(src)
    _, oh, ow, _ = r.shape(dst)
    if r.qparams(src) != r.qparams(dst):
        raise r.error("unsupported MAX_POOL_2D: output quantised differently from its input")
    _, pad_top = _padding(h, opt.filterHeight, opt.strideH, opt.padding == 0)
    _, pad_left = _padding(w, opt.filterWidth, opt.strideW, opt.padding == 0)
    low, high = _activation_range(opt.fusedActivationFunction, *r.qparams(dst))
    return Step("maxpool", src, dst, dict(h=h, w=w, c=c, oh=oh, ow=ow, fh=opt.filterHeight, fw=opt.filterWidth,
                                          sh=opt.strideH, sw=opt.strideW, pad_top=pad_top, pad_left=pad_left,
                                          act_min=low, act_max=high), layer=layer)


def _channel(r: _Reader, kind: str, src: int, const_t: int, dst: int, act: int, layer: str) -> Step:
    """activation (1, H, W, C) op per-channel constant -> int8, TFLite's int8 ADD/SUB (left shift 20) or MUL."""
    from digitsum_edge.export.fixedpoint import mbqm

    shape, c = r.shape(src), r.shape(src)[-1]
    values = np.broadcast_to(r.const(const_t).reshape(-1), (c,)).astype(np.int64)  # type: ignore[union-attr]
    (s1, z1), (s2, z2), (so, zo) = r.qparams(src), r.qparams(const_t), r.qparams(dst)
    low, high = _activation_range(act, so, zo)
    p: dict[str, Any] = dict(n=int(np.prod(shape[:-1])), c=c, in_off=-z1, out_off=zo, act_min=low, act_max=high)
    if kind == "MUL":
        p["op"], p["factor"] = 0, (values - z2).astype(np.int32)
        p["m_out"], p["s_out"] = quantize_multiplier(float(s1) * float(s2) / float(so))
        p["m_in"], p["s_in"] = 0, 0
    else:
        if kind == "SUB":  # TFLite's SUB works out its multipliers in float32, ADD in double
            twice = np.float32(2) * max(np.float32(s1), np.float32(s2))
            real1, real2 = float(np.float32(s1) / twice), float(np.float32(s2) / twice)
            real_out = float(twice / (np.float32(1 << 20) * np.float32(so)))
        else:
            twice_d = 2 * float(max(np.float32(s1), np.float32(s2)))
            real1, real2, real_out = float(s1) / twice_d, float(s2) / twice_d, twice_d / ((1 << 20) * float(so))
        m2, sh2 = quantize_multiplier(real2)
        p["op"] = 1 if kind == "ADD" else 2
        p["m_in"], p["s_in"] = quantize_multiplier(real1)
        p["m_out"], p["s_out"] = quantize_multiplier(real_out)
        # the constant's side of the sum, the same for every pixel: worked out here once
        p["factor"] = np.array([mbqm(int(v - z2) << 20, m2, sh2) for v in values], np.int32)
    return Step("channel", src, dst, p, layer=layer)


def _outer(r: _Reader, src: list[int], dst: int, act: int) -> Step:
    """(1, D, 1) * (1, R) -> (1, D, R): the sum head's digit probabilities times one-hot rand."""
    a, b = src
    if r.shape(a)[-1] != 1:
        a, b = b, a
    d, n = int(np.prod(r.shape(a))), int(np.prod(r.shape(b)))
    if r.shape(dst)[-2:] != [d, n]:
        raise r.error(f"unsupported MUL of {r.shape(a)} and {r.shape(b)}")
    (sa, za), (sb, zb), (so, zo) = r.qparams(a), r.qparams(b), r.qparams(dst)
    m, s = quantize_multiplier(float(sa) * float(sb) / float(so))
    low, high = _activation_range(act, so, zo)
    return Step("outer", a, dst, dict(d=d, r=n, a_off=-za, b_off=-zb, m=m, s=s, out_off=zo, act_min=low,
                                      act_max=high), src2=b, layer="sum_head")


def _global_max(r: _Reader, ops: list[Any], src: int) -> Step:
    """TRANSPOSE (NHWC -> NCHW), DEQUANTIZE, REDUCE_MAX over H and W, QUANTIZE with the same scale: the maximum
    of the int8 values per channel (dequantising and quantising again with one scale gives back each value)."""
    kinds = [r.kinds[op.opcodeIndex] for op in ops]
    if kinds != ["TRANSPOSE", "DEQUANTIZE", "REDUCE_MAX", "QUANTIZE"]:
        raise r.error(f"unsupported operator sequence {' '.join(kinds)}")
    perm, axes = r.const(int(ops[0].inputs[1])), r.const(int(ops[2].inputs[1]))
    dst = int(ops[3].outputs[0])
    scale, zero = r.qparams(src)
    levels = (np.arange(-128, 128, dtype=np.float32) - np.float32(zero)) * np.float32(scale)
    back = np.round(levels / np.float32(scale)) + zero  # no ties: each is within float error of an integer
    if (perm is None or list(perm) != [0, 3, 1, 2] or axes is None or sorted(axes.tolist()) != [2, 3]
            or r.qparams(dst) != (scale, zero) or not np.array_equal(back, np.arange(-128, 128))):
        raise r.error("unsupported global pooling: not a max over height and width at one scale")
    _, h, w, c = r.shape(src)
    return Step("globalmax", src, dst, dict(n=h * w, c=c), layer="global_max")


def _fc(r: _Reader, src: list[int], dst: int, act: int, layer: str) -> Step:
    weights = r.const(src[1])
    if weights is None:
        raise r.error("unsupported FULLY_CONNECTED: weights computed at run time")
    n_out, n_in = weights.shape
    (in_scale, in_zero), (out_scale, out_zero) = r.qparams(src[0]), r.qparams(dst)
    w_scales, w_zeros = r.quant(src[1])
    if np.any(w_zeros != 0):
        raise r.error("unsupported FULLY_CONNECTED: weights with a zero point")
    bias = r.const(src[2]) if len(src) > 2 and src[2] >= 0 else None
    mult, shift = _multipliers(in_scale, w_scales, out_scale, n_out)
    low, high = _activation_range(act, out_scale, out_zero)
    return Step("fc", src[0], dst, dict(n_in=n_in, n_out=n_out, weights=weights.astype(np.int8),
                                        bias=np.zeros(n_out, np.int32) if bias is None else bias.astype(np.int32),
                                        mult=mult, shift=shift, in_off=-in_zero, out_off=out_zero, act_min=low,
                                        act_max=high), layer=layer)


def _softmax(r: _Reader, src: int, dst: int, beta: float) -> Step:
    if r.qparams(dst) != (1 / 256, -128):
        raise r.error("unsupported SOFTMAX: int8 output not at scale 1/256, zero point -128")
    table = np.array(softmax_exp_table(r.qparams(src)[0], float(beta)), np.int32)
    return Step("softmax", src, dst, dict(n=r.shape(src)[-1], exp_table=table), layer="sum_head")


def _onehot(r: _Reader, lookup: Any, quantize: Any) -> Step:
    """EMBEDDING_LOOKUP(rand, float table) then QUANTIZE: each row of the table quantised here, as TFLite does."""
    index, table_t = int(lookup.inputs[0]), int(lookup.inputs[1])
    table = r.const(table_t)
    dst = int(quantize.outputs[0])
    if r.sg.inputs[1] != index or table is None or table.dtype != np.float32:
        raise r.error("unsupported EMBEDDING_LOOKUP: not rand in a constant float table")
    scale, zero = r.qparams(dst)
    rows = np.clip(np.array([[round_half_away(float(np.float32(v) / np.float32(scale))) for v in row]
                             for row in table]) + zero, -128, 127)
    return Step("onehot", index, dst, dict(rows=table.shape[0], width=table.shape[1], table=rows.astype(np.int8)),
                layer="sum_head")
