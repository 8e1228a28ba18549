"""LiteRT: export --format litert on the tiny model, the files it writes, and reading them through the one door
(the API, predict, live), the int8 file through TFLite Micro, and its C array. Every test runs the file."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

MISSING = [m for m in ("litert_torch", "ai_edge_litert", "ai_edge_quantizer", "tflite_micro")
           if importlib.util.find_spec(m) is None]
if MISSING:  # only where the packages cannot install (tflite-micro has Linux x86-64 wheels only)
    print(f"skip: the litert-export extra is not installed here (missing {', '.join(MISSING)})")
    pytest.skip(f"the litert-export extra is not installed (missing {', '.join(MISSING)})", allow_module_level=True)

from digitsum_edge import checkpoint, mnist, onnx_contract  # noqa: E402
from digitsum_edge.engine.factory import open_model  # noqa: E402
from digitsum_edge.engine.litert import LiteRT, embedded_metadata, open_litert, open_micro  # noqa: E402
from digitsum_edge.errors import DigitsumError  # noqa: E402
from digitsum_edge.synth.frames import pick_digits, write_images, write_video  # noqa: E402
from helpers import invoke, one_line_error  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_litert: Path) -> tuple[Path, dict]:
    """runs/ after `export runs/model.pt --format litert --int8` (conftest): the folder and export.json."""
    return tiny_litert, json.loads((tiny_litert / "export.json").read_text())


def test_the_cli_exports_litert_int8_as_one_format(tiny_litert_cli: tuple[Path, int, str], tiny_checkpoint: Path,
                                                   tmp_path: Path) -> None:
    """--format litert-int8 is --format litert --int8 (the shared export is this command: conftest), and its four
    files go where --out says: each of them, already there, is refused by its --out name before any work."""
    out, exit_code, output = tiny_litert_cli
    assert exit_code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.int8.tflite", "model.pt", "model.tflite",
                                                      "model_data.cc", "model_data.h"]
    assert "model.int8.tflite | int8" in output and "| litert |" in output
    open_micro(out / "model.int8.tflite")
    for name in ("net.tflite", "net.int8.tflite", "net_data.cc", "net_data.h"):
        folder = tmp_path / name
        (folder / name).parent.mkdir()
        (folder / name).write_bytes(b"an existing output")
        result = invoke("export", tiny_checkpoint, "--format", "litert-int8", "--out", folder / "net.tflite")
        one_line_error(result, f"output {folder / name} exists")
        assert sorted(p.name for p in folder.iterdir()) == [name]


def test_export_writes_verified_files_beside_the_checkpoint(exported: tuple[Path, dict]) -> None:
    out, report = exported
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.int8.tflite", "model.pt", "model.tflite",
                                                      "model_data.cc", "model_data.h"]
    fp32, int8 = report["files"]
    assert report["format"] == "litert" and fp32["precision"] == "fp32" and int8["precision"] == "int8"
    assert fp32["pairs"] == 5000 and fp32["verdict"]["pass"] and max(fp32["max_abs_diff"].values()) < 1e-4
    assert fp32["argmax_agreement"] == {"digit_logits": 1.0, "sum_logits": 1.0}
    assert fp32["signatures"] == ["batch_1", f"batch_{onnx_contract.LITERT_BATCH}"]
    assert int8["signatures"] == ["batch_1"]
    micro = int8["tflite_micro"]
    assert int8["verdict"]["pass"] and micro["verdict"]["pass"] and micro["pairs"] == 5000
    assert 1024 < micro["arena_bytes"] < 200_000  # the tiny model's activations fit in a small arena
    for figures in (int8, micro):  # full-integer int8 loses at most the budget against the fp32 file
        for key in onnx_contract.ACCURACY_KEYS:
            assert figures["metrics"][key] >= fp32["metrics"][key] - onnx_contract.MAX_ACCURACY_DROP
    assert int8["size_bytes"] < fp32["size_bytes"] / 2


def test_the_contract_travels_inside_the_file(exported: tuple[Path, dict], tiny_checkpoint: Path,
                                              tiny_onnx: Path) -> None:
    out, _ = exported
    fp32, int8 = open_model(out / "model.tflite", "cpu"), open_model(out / "model.int8.tflite", "cpu")
    assert isinstance(fp32, LiteRT) and fp32.runtime == "litert" and fp32.provider == "cpu"
    ckpt = checkpoint.load(tiny_checkpoint)
    assert fp32.info.weights_sha256 == checkpoint.weights_sha256(ckpt["state_dict"])
    assert (fp32.info.precision, int8.info.precision) == ("fp32", "int8")
    onnx_info = open_model(tiny_onnx, "cpu").info
    assert (fp32.info.mean, fp32.info.std, fp32.info.num_sums) == (onnx_info.mean, onnx_info.std, onnx_info.num_sums)
    assert fp32.info.versions["litert-torch"] and fp32.info.model_config == onnx_info.model_config
    props = embedded_metadata((out / "model.tflite").read_bytes(), "m")
    assert props == onnx_contract.metadata_props(fp32.info)  # the same 18 pairs as an ONNX file's metadata_props
    assert sorted(s.batch for s in fp32.signatures) == [1, onnx_contract.LITERT_BATCH]
    assert int8.signatures[0].image_quant is not None and int8.signatures[0].image_quant[0] > 0


def test_litert_computes_what_onnx_runtime_computes_for_any_batch(exported: tuple[Path, dict], tiny_onnx: Path) -> None:
    out, _ = exported
    test = mnist.load("test")
    images, rand = test.images[:300], np.arange(300) % 10
    lite = open_model(out / "model.tflite", "cpu", threads=1)
    want = open_model(tiny_onnx, "cpu").logits(images, rand)
    for n in (1, 7, 64, 300):  # batch 1, batch 1 calls for a few, a padded batch_256, one full call and a rest
        got = lite.logits(images[:n], rand[:n])
        for g, w in zip(got, want, strict=True):
            assert g.shape == w[:n].shape and np.abs(g - w[:n]).max() < 1e-4
    assert lite.reopen(2).threads == 2


def test_the_reader_api_predict_and_live_read_a_tflite_as_an_onnx(exported: tuple[Path, dict], tiny_onnx: Path,
                                                                   tmp_path: Path) -> None:
    import digitsum_edge

    out, _ = exported
    images = mnist.load("test").images[:40]
    lite = digitsum_edge.load(out / "model.tflite", provider="cpu").predict(images, rand=np.arange(40) % 10)
    onnx = digitsum_edge.load(tiny_onnx, provider="cpu").predict(images, rand=np.arange(40) % 10)
    assert np.array_equal(lite.digits, onnx.digits) and np.array_equal(lite.sums, onnx.sums)
    digits, labels = pick_digits(6, seed=4)
    write_images(tmp_path / "shots", digits, labels, seed=4)

    def readings(model: Path) -> list[dict]:
        result = invoke("predict", tmp_path / "shots", "--model", model, "--rand", "4", "--provider", "cpu")
        assert result.exit_code == 0, result.output
        return [{k: v for k, v in json.loads(line).items() if not k.endswith("ms") and k != "digit_confidence"
                 and k != "sum_confidence"} for line in result.stdout.splitlines()]

    assert readings(out / "model.tflite") == readings(tiny_onnx) and len(readings(tiny_onnx)) == 6
    video = tmp_path / "clip.mp4"
    write_video(video, digits[:3], labels[:3], seed=4, hold=2)
    live = invoke("live", "--source", video, "--model", out / "model.int8.tflite", "--rand", "2", "--no-window",
                  "--provider", "cpu", "--jsonl", tmp_path / "live.jsonl")
    assert live.exit_code == 0, live.output
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all(line["sum"] == line["digit"] + 2 for line in lines if line["found"])


def test_tflite_micro_runs_the_int8_file_and_the_c_array_is_that_file(exported: tuple[Path, dict]) -> None:
    out, report = exported
    micro = open_micro(out / "model.int8.tflite")
    assert micro.runtime == "tflite-micro" and micro.arena_bytes == report["files"][1]["tflite_micro"]["arena_bytes"]
    test = mnist.load("test")
    images, rand = test.images[:100], np.arange(100) % 10
    digit_micro, sum_micro = micro.logits(images, rand)
    digit_lite, _ = open_model(out / "model.int8.tflite", "cpu").logits(images, rand)
    assert np.mean(digit_micro.argmax(1) == digit_lite.argmax(1)) >= 0.97  # two int8 kernels libraries agree
    assert np.mean(digit_micro.argmax(1) == test.labels[:100]) > 0.85
    assert np.mean(sum_micro.argmax(1) == digit_micro.argmax(1) + rand) > 0.9
    source = (out / "model_data.cc").read_text()
    array = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", source.split("{", 1)[1]))
    assert array == (out / "model.int8.tflite").read_bytes()
    assert f"g_digitsum_model_data_len = {len(array)};" in source and '#include "model_data.h"' in source
    header = (out / "model_data.h").read_text()
    scale, zero = micro.signature.image_quant  # type: ignore[union-attr]
    assert f"kDigitsumArenaBytes = {micro.arena_bytes};" in header
    assert f"kDigitsumInputZeroPoint = {zero};" in header and repr(scale) in header
    operators = header.split("// Operators to register", 1)[1].splitlines()[0]
    assert "EMBEDDING_LOOKUP" in operators and "CONV_2D" in operators and "ONE_HOT" not in operators


@pytest.mark.parametrize(("make", "fragment"), [
    ("truncated", "is not a readable LiteRT model"),
    ("not_tflite", "is not a readable LiteRT model (no TFLite flatbuffer identifier)"),
    ("no_metadata", "is not a digitsum-edge LiteRT model (no 'digitsum_edge' metadata in the file)"),
])
def test_bad_tflite_files_are_one_clear_error(exported: tuple[Path, dict], tmp_path: Path, make: str,
                                              fragment: str) -> None:
    out, _ = exported
    data = (out / "model.tflite").read_bytes()
    bad = tmp_path / f"{make}.tflite"
    bad.write_bytes({"truncated": data[:len(data) // 2], "not_tflite": b"\x00" * 64,
                     "no_metadata": strip_metadata(data)}[make])
    with pytest.raises(DigitsumError) as info:
        open_litert(bad, "cpu")
    assert str(info.value).startswith(str(bad)) and fragment in str(info.value) and "\n" not in str(info.value)


def test_runtime_choices_that_cannot_be_honoured(exported: tuple[Path, dict]) -> None:
    out, _ = exported
    with pytest.raises(DigitsumError, match=r"--provider cuda: LiteRT runs \.tflite files on the CPU"):
        open_litert(out / "model.tflite", "cuda")
    with pytest.raises(DigitsumError, match="holds an fp32 model; TFLite Micro runs the int8 file"):
        open_micro(out / "model.tflite")


def test_bench_has_a_row_for_every_runtime(exported: tuple[Path, dict], tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    shutil.copytree(exported[0], out)  # the shared export stays as it is
    shutil.copy(tiny_onnx, out / "model.onnx")
    result = invoke("bench", "--checkpoint", out / "model.pt", "--batch-sizes", "1,8", "--budget", "0.02",
                    "--warmup", "1", "--min-runs", "2", "--eval-images", "30", "--threads", "1", "--no-compile",
                    "--no-live", "--json", tmp_path / "bench.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "bench.json").read_text())
    rows = {(r["backend"], r["precision"], r["batch"]) for r in data["rows"]}
    assert {("litert", "fp32", 1), ("litert", "fp32", 8), ("litert", "int8", 1), ("litert", "int8", 8),
            ("tflite-micro", "int8", 1)} <= rows and ("tflite-micro", "int8", 8) not in rows  # micro: batch 1
    parity = {p["label"]: p for p in data["parity"]}
    assert parity["litert cpu fp32"]["pass"] and parity["litert cpu fp32"]["argmax_agreement"]["digit_logits"] == 1
    micro, fp32_onnx = parity["tflite-micro cpu int8"], parity["onnxruntime cpu fp32"]
    drop = max(fp32_onnx[k] - micro[k] for k in onnx_contract.ACCURACY_KEYS)  # 300 pairs: one image is 3.3 points
    assert micro["pass"] == (drop <= onnx_contract.MAX_ACCURACY_DROP + 1e-12) and micro["arena_bytes"] > 1024
    assert "accuracy drop vs fp32" in micro["check"] or "below fp32's" in micro["check"]
    assert {"litert", "litert_int8"} <= set(data["header"]["model"]["files"])
    swapped = invoke("bench", "--checkpoint", out / "model.pt", "--litert", out / "model.int8.tflite", "--batch-sizes",
                     "1", "--budget", "0.01", "--no-compile", "--no-live", "--eval-images", "5")
    one_line_error(swapped, "model.int8.tflite holds an int8 model; --litert takes an fp32 file")


def strip_metadata(data: bytes) -> bytes:
    """The flatbuffer without its metadata entries: a LiteRT model that is not a digitsum-edge file."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    model.metadata = []
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_the_c_array_compiles_and_holds_the_model(exported: tuple[Path, dict], tmp_path: Path) -> None:
    """Firmware compiles model_data.cc: the system C++ compiler builds it with a small program that reads it."""
    import subprocess

    compiler = shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        print("skip: no C++ compiler here")
        pytest.skip("no C++ compiler (g++ or clang++) to build model_data.cc")
    out, _ = exported
    (tmp_path / "main.cc").write_text(
        '#include <cstdio>\n#include "model_data.h"\nint main() {\n'
        '  std::printf("%u %.4s %d %d\\n", g_digitsum_model_data_len, (const char*)g_digitsum_model_data + 4,\n'
        '              kDigitsumArenaBytes, (int)(reinterpret_cast<unsigned long>(g_digitsum_model_data) % 16));\n}\n')
    sources = [str(out / "model_data.cc"), str(tmp_path / "main.cc")]
    built = subprocess.run([compiler, "-std=c++17", "-I", str(out), *sources, "-o", str(tmp_path / "probe")],
                           capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    length, identifier, arena, misalignment = subprocess.run(
        [str(tmp_path / "probe")], capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert int(length) == (out / "model.int8.tflite").stat().st_size and identifier == "TFL3"
    assert int(arena) == open_micro(out / "model.int8.tflite").arena_bytes and misalignment == "0"
