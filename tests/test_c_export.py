"""export --format c on the tiny model's int8 .tflite: the C files it writes, built here with the system C
compiler, give TFLite Micro's int8 outputs bit for bit; a wrong constant is caught; bad input is one line."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

MISSING = [m for m in ("ai_edge_litert", "tflite_micro") if importlib.util.find_spec(m) is None]
if MISSING or shutil.which("cc") is None:
    reason = f"missing {', '.join(MISSING)}" if MISSING else "no C compiler (cc)"
    print(f"skip: export --format c cannot be checked here ({reason})")
    pytest.skip(f"export --format c cannot be checked here ({reason})", allow_module_level=True)

from digitsum_edge import mnist  # noqa: E402
from digitsum_edge.engine.litert import read_contract  # noqa: E402
from digitsum_edge.export.c_graph import read_graph  # noqa: E402
from digitsum_edge.export.c_host import HostModel, tflite_micro_logits  # noqa: E402
from digitsum_edge.export.c_source import render  # noqa: E402
from helpers import invoke, one_line_error  # noqa: E402


@pytest.fixture(scope="module")
def c_files(tiny_litert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`export runs/model.int8.tflite --format c --out OUT/digitsum_model.c` as a user runs it."""
    out = tmp_path_factory.mktemp("c") / "digitsum_model.c"
    result = invoke("export", tiny_litert / "model.int8.tflite", "--format", "c", "--out", out, "--verify-images",
                    "20", "--json", out.with_name("c.json"))
    assert result.exit_code == 0, result.output
    assert "equal to TFLite Micro bit for bit on 200 pairs" in result.output
    return out, json.loads(out.with_name("c.json").read_text())


def test_the_c_code_gives_tflite_micros_int8_outputs_bit_for_bit(c_files: tuple[Path, dict], tiny_litert: Path,
                                                                 tmp_path: Path) -> None:
    """300 test images export did not check (3,000 pairs), each with every rand."""
    source, report = c_files
    assert report["mismatches"] == 0 and report["pairs"] == 200
    test = mnist.load("test")
    images, labels = test.images[5000:5300], test.labels[5000:5300]
    ours = HostModel(source, tmp_path).logits(images, 10, 10, 19)
    theirs = tflite_micro_logits(tiny_litert / "model.int8.tflite", images)
    assert ours.mismatches(theirs) == 0
    assert np.array_equal(ours.digit, theirs.digit) and np.array_equal(ours.sum, theirs.sum)
    accuracy = ours.accuracy(labels)
    assert accuracy["digit_accuracy"] > 0.85 and accuracy["sum_accuracy"] > 0.85  # a working reader, not noise


def test_the_files_are_self_contained_c99(c_files: tuple[Path, dict]) -> None:
    source, _ = c_files
    text, header = source.read_text(), source.with_suffix(".h").read_text()
    includes = set(re.findall(r'#include [<"]([^>"]+)[>"]', text + header))
    assert includes == {"stdint.h", "string.h", "arm_acle.h", "digitsum_model.h"}  # arm_acle: the DSP path only
    assert not re.search(r"\b(malloc|calloc|free|printf|float|double)\b", text)
    assert "int digitsum_run(const int8_t image[DIGITSUM_IMAGE_BYTES], int32_t rand" in header
    for name in ("IMAGE_SCALE", "DIGIT_SCALE", "DIGIT_ZERO_POINT", "SUM_SCALE", "SUM_ZERO_POINT", "NUM_SUMS 19"):
        assert f"#define DIGITSUM_{name}" in header


def test_a_wrong_constant_is_caught(tiny_litert: Path, tmp_path: Path) -> None:
    """The comparison can fail: one zero point off by one in the sum head makes the outputs differ."""
    tflite = tiny_litert / "model.int8.tflite"
    data = tflite.read_bytes()
    graph = read_graph(data, str(tflite))
    graph.steps[-1].p["out_off"] += 1
    written = render(graph, read_contract(data, str(tflite)), "digitsum_model.h", "test")
    (tmp_path / "digitsum_model.c").write_text(written.source)
    (tmp_path / "digitsum_model.h").write_text(written.header)
    images = mnist.load("test").images[:20]
    ours = HostModel(tmp_path / "digitsum_model.c", tmp_path).logits(images, 10, 10, 19)
    theirs = tflite_micro_logits(tflite, images)
    assert np.array_equal(ours.digit, theirs.digit) and ours.mismatches(theirs) > 150


def test_bad_input_is_one_line(tiny_litert: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    int8 = tiny_litert / "model.int8.tflite"
    one_line_error(invoke("export", tiny_litert / "model.tflite", "--format", "c", "--out", tmp_path / "a.c"),
                   "is not the project's int8 model")
    one_line_error(invoke("export", tiny_checkpoint, "--format", "c", "--out", tmp_path / "a.c"),
                   "takes the int8 .tflite")
    one_line_error(invoke("export", int8, "--format", "c", "--core", "cortex-m3", "--out", tmp_path / "a.c"),
                   "unknown core 'cortex-m3'", "cortex-m4, cortex-m7, cortex-m55")
    model = schema.ModelT.InitFromPackedBuf(bytearray(int8.read_bytes()), 0)  # MAX_POOL_2D -> AVERAGE_POOL_2D
    for code in model.operatorCodes:
        if code.builtinCode == schema.BuiltinOperator.MAX_POOL_2D:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.AVERAGE_POOL_2D
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    (tmp_path / "avg.tflite").write_bytes(bytes(builder.Output()))
    one_line_error(invoke("export", tmp_path / "avg.tflite", "--format", "c", "--out", tmp_path / "a.c"),
                   "unsupported operator AVERAGE_POOL_2D")
    assert not (tmp_path / "a.c").exists() and not (tmp_path / "a.h").exists()
