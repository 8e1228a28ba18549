"""`export --format c`, step 2: the graph's steps -> two files, NAME.c (kernels, constants, static buffers and
`digitsum_run`) and NAME.h (the call, the sizes, the scales and zero points), C99 with <stdint.h> and <string.h>."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.export.c_graph import Graph, Step


def _array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
    flat = [int(v) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(map(str, flat[i:i + per_line])) for i in range(0, len(flat), per_line)]
    return f"static const {ctype} {name}[{len(flat)}] DS_ALIGN4 = {{\n    " + ",\n    ".join(rows) + "\n};\n"


def _packed(weights: np.ndarray, grouped: bool) -> tuple[np.ndarray, int]:
    """[cout, k] int8 -> [cout, kp] with kp a multiple of 4 (zero weights added). SXTB16 of a word of four
    weights gives the pair (w0, w2), rotated by 8 (w1, w3): a grouped im2col stores its inputs in that order;
    otherwise the inputs stay in order and each four weights are stored w0 w2 w1 w3."""
    cout, k = weights.shape
    kp = -(-k // 4) * 4
    padded = np.zeros((cout, kp), np.int8)
    padded[:, :k] = weights
    return padded if grouped else padded.reshape(cout, kp // 4, 4)[:, :, [0, 2, 1, 3]].reshape(cout, kp), kp


def _requant(name: str, mult: np.ndarray, shift: np.ndarray) -> str:
    """Per-channel ds_rq_t: multiplier, rounding term, left and right shift (ds_rq_make, worked out here)."""
    rows = []
    for m, s in zip(mult.tolist(), shift.tolist(), strict=True):
        left, right = max(s, 0), max(-s, 0)
        rows.append(f"{{{m}, {(1 << (right - 1)) if right else 0}, {left}, {right}}}")
    return f"static const ds_rq_t {name}[{len(rows)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


class _Emitter:
    def __init__(self, graph: Graph):
        self.g = graph
        self.consts: list[str] = []
        self.calls: list[str] = []
        self.storage, self.arena_bytes = _plan_storage(graph)
        self.col = 0  # int16 values of one im2col row (two rows are kept)

    def ref(self, tensor: int) -> str:
        return self.storage[tensor]

    def step(self, i: int, s: Step) -> None:
        p, name = s.p, f"ds_s{i}"
        src, dst = self.ref(s.src) if s.kind != "onehot" else "rand", self.ref(s.dst)
        if s.kind == "conv":
            grouped = p["cin"] % 4 == 0
            weights, kp = _packed(p["weights"], grouped)
            self.col = max(self.col, kp)
            self.consts += [_array("int8_t", f"{name}_w", weights), _array("int32_t", f"{name}_b", p["bias"]),
                            _requant(f"{name}_q", p["mult"], p["shift"])]
            fields = ", ".join(str(p[k]) for k in ("h", "w", "cin", "oh", "ow", "cout", "kh", "kw", "sh", "sw",
                                                   "pad_top", "pad_left"))
            self.consts.append(f"static const ds_conv_t {name} = {{{fields}, {p['weights'].shape[1]}, {kp}, "
                               f"{int(grouped)}, {p['in_off']}, {p['out_off']}, {p['act_min']}, {p['act_max']}, "
                               f"{name}_w, {name}_b, {name}_q}};\n")
            self.calls.append(f"ds_conv({src}, {dst}, &{name}, ds_col.h);")
        elif s.kind == "maxpool":
            fields = ", ".join(str(p[k]) for k in ("h", "w", "c", "oh", "ow", "fh", "fw", "sh", "sw", "pad_top",
                                                   "pad_left", "act_min", "act_max"))
            self.consts.append(f"static const ds_pool_t {name} = {{{fields}}};\n")
            self.calls.append(f"ds_maxpool({src}, {dst}, &{name});")
        elif s.kind == "channel":
            self.consts.append(_array("int32_t", f"{name}_f", p["factor"], 8))
            fields = ", ".join(str(p[k]) for k in ("n", "c", "op", "in_off", "out_off", "act_min", "act_max", "m_in",
                                                   "s_in", "m_out", "s_out"))
            self.consts.append(f"static const ds_chan_t {name} = {{{fields}, {name}_f}};\n")
            self.calls.append(f"ds_channel({src}, {dst}, &{name});")
        elif s.kind == "table":
            self.consts.append(_array("int8_t", f"{name}_t", p["table"]))
            self.calls.append(f"ds_channel_table({src}, {dst}, {p['n']}, {p['c']}, {name}_t);")
        elif s.kind == "globalmax":
            self.calls.append(f"ds_global_max({src}, {dst}, {p['n']}, {p['c']});")
        elif s.kind == "fc":
            self.consts += [_array("int8_t", f"{name}_w", p["weights"]), _array("int32_t", f"{name}_b", p["bias"]),
                            _array("int32_t", f"{name}_m", p["mult"], 8), _array("int32_t", f"{name}_s", p["shift"])]
            self.consts.append(f"static const ds_fc_t {name} = {{{p['n_in']}, {p['n_out']}, {p['in_off']}, "
                               f"{p['out_off']}, {p['act_min']}, {p['act_max']}, {name}_w, {name}_b, {name}_m, "
                               f"{name}_s}};\n")
            self.calls.append(f"ds_fc({src}, {dst}, &{name});")
        elif s.kind == "softmax":
            self.consts.append(_array("int32_t", f"{name}_exp", p["exp_table"], 8))
            self.calls.append(f"ds_softmax({src}, {dst}, {p['n']}, {name}_exp);")
        elif s.kind == "onehot":
            self.consts.append(_array("int8_t", f"{name}_rows", p["table"]))
            self.calls.insert(0, f"if (rand < 0 || rand >= {p['rows']}) return -1; /* before anything is written */")
            self.calls.append(f"memcpy({dst}, {name}_rows + rand * {p['width']}, {p['width']});")
        elif s.kind == "outer":
            fields = ", ".join(str(p[k]) for k in ("d", "r", "a_off", "b_off", "m", "s", "out_off", "act_min",
                                                   "act_max"))
            self.consts.append(f"static const ds_outer_t {name} = {{{fields}}};\n")
            self.calls.append(f"ds_outer({src}, {self.ref(s.src2)}, {dst}, &{name});")
        self.calls.append(f'DIGITSUM_LAYER_HOOK("{s.layer}");')


def _plan_storage(g: Graph) -> tuple[dict[int, str], list[int]]:
    """Every tensor -> a C expression for its memory: the caller's arrays for the inputs and outputs, otherwise
    one of a few static arenas, reused once a tensor is no longer read (elementwise steps work in place)."""
    last_read: dict[int, int] = {}
    for i, s in enumerate(g.steps):
        for t in (s.src, s.src2):
            if t >= 0:
                last_read[t] = i
    where = {g.image: "image", g.digit: "digit_logits", g.sum: "sum_logits"}
    arenas: list[list[int]] = []  # tensors placed in each arena
    for i, s in enumerate(g.steps):
        if s.dst in where:
            continue
        if s.kind in ("channel", "table") and last_read.get(s.src) == i and s.src not in (g.image, g.digit, g.sum):
            where[s.dst] = where[s.src]  # in place
            arenas[int(where[s.src].split("_")[-1])].append(s.dst)
            continue
        reading = {s.src, s.src2}
        for n, held in enumerate(arenas):
            if all(last_read.get(t, -1) < i and t not in reading for t in held):
                held.append(s.dst)
                where[s.dst] = f"ds_arena_{n}"
                break
        else:
            arenas.append([s.dst])
            where[s.dst] = f"ds_arena_{len(arenas) - 1}"
    return where, [max(g.sizes[t] for t in held) for held in arenas]


@dataclass
class CFiles:
    source: str  # NAME.c
    header: str  # NAME.h
    static_ram_bytes: int  # the static buffers: activations and im2col rows
    steps: int  # calls in digitsum_run


def render(graph: Graph, info: onnx_contract.ModelInfo, header_name: str, core_note: str) -> CFiles:
    """NAME.c and NAME.h for the graph; header_name is what NAME.c includes."""
    from digitsum_edge.export.c_fold import fold_tables

    graph.steps = fold_tables(graph.steps)
    e = _Emitter(graph)
    for i, step in enumerate(graph.steps):
        e.step(i, step)
    arenas = e.arena_bytes
    col_words = e.col  # two int16 rows of e.col values = e.col int32 words
    kernels = files("digitsum_edge.export").joinpath("c_kernels/kernels.c").read_text()
    buffers = "".join(f"static int8_t ds_arena_{n}[{size}] DS_ALIGN4;\n" for n, size in enumerate(arenas))
    buffers += f"static union {{ int16_t h[{2 * e.col}]; int32_t w[{col_words}]; }} ds_col; /* im2col, two rows */\n"
    ram = sum(arenas) + 4 * col_words
    source = (f'/* The digitsum-edge int8 model in C99, written by `digitsum-edge export --format c` from the int8\n'
              f' * .tflite (weights {info.weights_sha256[:16]}). Bit-exact with TFLite Micro on the same file.\n'
              f' * {core_note} */\n#include <stdint.h>\n#include <string.h>\n#include "{header_name}"\n\n'
              + kernels + "\n/* ---- The model ---- */\n" + "".join(e.consts) + "\n" + buffers
              + _pixel_table(info, graph.image_quant)
              + "\nint digitsum_run(const int8_t image[DIGITSUM_IMAGE_BYTES], int32_t rand,\n"
              "                 int8_t digit_logits[DIGITSUM_NUM_DIGITS], int8_t sum_logits[DIGITSUM_NUM_SUMS]) {\n    "
              + "\n    ".join(e.calls) + "\n    return 0;\n}\n\n"
              "void digitsum_quantize_image(const uint8_t pixels[DIGITSUM_IMAGE_BYTES], "
              "int8_t image[DIGITSUM_IMAGE_BYTES]) {\n    int i;\n"
              "    for (i = 0; i < DIGITSUM_IMAGE_BYTES; i++) image[i] = ds_pixel_to_int8[pixels[i]];\n}\n")
    return CFiles(source, _header(graph, info, header_name, core_note, ram), ram, len(graph.steps))


def _pixel_table(info: onnx_contract.ModelInfo, quant: tuple[float, int]) -> str:
    """Pixel 0-255 -> the int8 input, exactly as the project's runtime quantises a normalised image."""
    from digitsum_edge.engine.litert import quantize

    normalised = onnx_contract.normalize(np.arange(256, dtype=np.uint8), info.mean, info.std)
    return "\n" + _array("int8_t", "ds_pixel_to_int8", quantize(normalised, *quant))


def _header(g: Graph, info: onnx_contract.ModelInfo, name: str, core_note: str, ram: int) -> str:
    guard = name.upper().replace(".", "_").replace("-", "_")
    size = info.input_size
    (iscale, izero), (dscale, dzero), (sscale, szero) = g.image_quant, g.digit_quant, g.sum_quant
    stem = name.removesuffix(".h")
    return f"""/* The digitsum-edge int8 model in C99 (`digitsum-edge export --format c`): add {stem}.c and
 * {name} to the firmware; no other library, no heap, no floating point, all buffers static.
 * {core_note}
 * Image: int8 [{size}][{size}], row-major, a white digit on black;
 *   q = round(((pixel / 255 - {info.mean!r}) / {info.std!r}) / DIGITSUM_IMAGE_SCALE) + DIGITSUM_IMAGE_ZERO_POINT,
 *   clamped to -128..127; digitsum_quantize_image() does it for 8-bit pixels.
 * Logits: int8; logit = (q - ZERO_POINT) * SCALE. Softmax of the real logits gives the probabilities; the argmax
 *   of the int8 logits is the answer (digit 0-{info.num_digits - 1}, sum = digit + rand, 0-{info.num_sums - 1}).
 * Not reentrant: one call at a time (the activations live in static buffers). */
#ifndef {guard}
#define {guard}

#include <stdint.h>

#define DIGITSUM_IMAGE_SIZE {size}
#define DIGITSUM_IMAGE_BYTES {size * size}
#define DIGITSUM_NUM_RAND {info.num_rand}
#define DIGITSUM_NUM_DIGITS {info.num_digits}
#define DIGITSUM_NUM_SUMS {info.num_sums}
#define DIGITSUM_IMAGE_SCALE {iscale!r}f
#define DIGITSUM_IMAGE_ZERO_POINT ({izero})
#define DIGITSUM_DIGIT_SCALE {dscale!r}f
#define DIGITSUM_DIGIT_ZERO_POINT ({dzero})
#define DIGITSUM_SUM_SCALE {sscale!r}f
#define DIGITSUM_SUM_ZERO_POINT ({szero})
#define DIGITSUM_STATIC_RAM_BYTES {ram} /* activations and im2col rows; the stack is apart (docs/mcu.md) */

/* Both heads for one image and rand (0-{info.num_rand - 1}): 0, or -1 (nothing written) for a rand out of range. */
int digitsum_run(const int8_t image[DIGITSUM_IMAGE_BYTES], int32_t rand,
                 int8_t digit_logits[DIGITSUM_NUM_DIGITS], int8_t sum_logits[DIGITSUM_NUM_SUMS]);

/* 8-bit grey pixels (0 black .. 255 white) -> the int8 image digitsum_run() takes. */
void digitsum_quantize_image(const uint8_t pixels[DIGITSUM_IMAGE_BYTES], int8_t image[DIGITSUM_IMAGE_BYTES]);

#endif
"""
