"""Export: every test runs the file it wrote with onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import Result

from digitsum_edge import checkpoint, mnist, onnx_contract
from digitsum_edge.engine.factory import open_model
from digitsum_edge.errors import DigitsumError
from digitsum_edge.evaluate import backend_exhaustive
from digitsum_edge.export.config import ExportConfig
from digitsum_edge.export.pipeline import ExportResult, run
from helpers import invoke, one_line_error


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_default_export_runs_with_named_io_and_dynamic_batch(tiny_onnx: Path) -> None:
    sess = session(tiny_onnx)
    assert [i.name for i in sess.get_inputs()] == ["image", "rand"]
    assert [o.name for o in sess.get_outputs()] == ["digit_logits", "sum_logits"]
    assert sess.get_inputs()[0].shape == ["batch", 1, 28, 28] and sess.get_inputs()[1].type == "tensor(int64)"
    for n in (1, 7):
        digit, total = sess.run(None, {"image": np.zeros((n, 1, 28, 28), np.float32),
                                       "rand": np.arange(n, dtype=np.int64) % 10})
        assert digit.shape == (n, 10) and total.shape == (n, 19)


def test_metadata_reads_back_and_matches_the_checkpoint(tiny_onnx: Path, tiny_checkpoint: Path) -> None:
    props = session(tiny_onnx).get_modelmeta().custom_metadata_map
    info = onnx_contract.parse(props)
    ckpt = checkpoint.load(tiny_checkpoint)
    assert (info.mean, info.std, info.input_size) == (onnx_contract.MEAN, onnx_contract.STD, 28)
    assert (info.num_digits, info.num_rand, info.num_sums, info.precision) == (10, 10, 19, "fp32")
    assert info.weights_sha256 == checkpoint.weights_sha256(ckpt["state_dict"])
    assert info.test_metrics["digit_accuracy"] == ckpt["metrics"]["digit_accuracy"]
    assert set(json.loads(props["outputs"])) == {"digit_logits", "sum_logits"}
    assert info.versions["torch"] and info.exported_at.startswith("20")


def test_onnx_accuracy_equals_pytorch_on_all_pairs(tiny_onnx: Path, tiny_checkpoint: Path) -> None:
    test, ckpt = mnist.load("test"), checkpoint.load(tiny_checkpoint)
    n = ckpt["train_config"]["eval_images"]  # what training evaluated on: every one of those pairs
    metrics, _, _ = backend_exhaustive(open_model(tiny_onnx, "cpu"), test.images[:n], test.labels[:n])
    assert metrics["pairs"] == ckpt["metrics"]["pairs"] == n * 10
    expected = ckpt["metrics"]
    assert metrics["digit_accuracy"] == pytest.approx(expected["digit_accuracy"], abs=1e-4)
    assert metrics["sum_accuracy"] == pytest.approx(expected["sum_accuracy"], abs=1e-4)


def test_static_batch_export(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "static.onnx"
    result = run(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(out), static_batch=4, verify_images=50))
    sess = session(out)
    assert sess.get_inputs()[0].shape == [4, 1, 28, 28]
    digit, _ = sess.run(None, {"image": np.zeros((4, 1, 28, 28), np.float32), "rand": np.zeros(4, np.int64)})
    assert digit.shape == (4, 10)
    assert result.files[0].comparison.argmax_agreement["digit_logits"] == 1.0


def test_int8_and_fp16_variants_are_verified_and_labelled(tiny_run: tuple[Path, ExportResult]) -> None:
    folder, result = tiny_run  # export model.pt --int8 --fp16, shared with the bench tests
    out = folder / "model.onnx"
    by_precision = {f.precision: f for f in result.files}
    assert set(by_precision) == {"fp32", "int8", "fp16"}
    int8_path = folder / "model.int8.onnx"
    assert by_precision["int8"].path == int8_path and int8_path.stat().st_size < out.stat().st_size
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(int8_path).graph.node)
    assert onnx_contract.parse(session(int8_path).get_modelmeta().custom_metadata_map).precision == "int8"
    fp32_acc = by_precision["fp32"].comparison.metrics["digit_accuracy"]
    test = mnist.load("test")
    int8_metrics, _, _ = backend_exhaustive(open_model(int8_path, "cpu"), test.images[:300], test.labels[:300])
    assert int8_metrics["digit_accuracy"] >= fp32_acc - onnx_contract.MAX_ACCURACY_DROP
    assert sorted(p.name for p in folder.iterdir()) == ["model.fp16.onnx", "model.int8.onnx", "model.onnx",
                                                         "model.pt"]  # nothing else, no temporary file


def test_int8_weights_use_seven_bits(tiny_run: tuple[Path, ExportResult]) -> None:
    # Two products of a weight and an 8-bit activation must fit 16 bits, or x86's AVX2 kernels (no VNNI) saturate
    # and read otherwise than ARM64 (docs/arm64.md): weights in [-64, 64], the whole of that range used.
    model = onnx.load(tiny_run[0] / "model.int8.onnx")
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer
               if t.name in quantized and t.data_type == onnx.TensorProto.INT8 and len(t.dims) > 1]
    assert len(weights) >= 4  # the convs and the classifier
    assert all(w.min() >= -64 and w.max() <= 64 for w in weights)
    assert max(int(np.abs(w).max()) for w in weights) == 64


def test_failed_verification_writes_nothing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    with pytest.raises(DigitsumError, match="verification failed"):
        run(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(out), tolerance=0.0, verify_images=50,
                         int8=True))
    assert list(tmp_path.iterdir()) == []


def export(*args: object):
    return invoke("export", *args)


@pytest.fixture(scope="module")
def cli_export(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path, Path]:
    """`export model.pt --out cli.onnx --verify-images 50 --json export.json` as a user runs it: the result, the
    file and the JSON report (one export for the tests that read them)."""
    folder = tmp_path_factory.mktemp("cli_export")
    out, report = folder / "cli.onnx", folder / "export.json"
    return export(str(tiny_checkpoint), "--out", str(out), "--verify-images", "50", "--json", str(report)), out, report


def test_cli_export_prints_summary_and_json(cli_export: tuple[Result, Path, Path]) -> None:
    result, out, report = cli_export
    assert result.exit_code == 0, result.output
    assert "verified on onnxruntime CPU" in result.output and "opset 18" in result.output
    assert "torchvision" not in result.output  # torch.onnx's notes about ops this model does not use
    data = json.loads(report.read_text())
    assert data["files"][0]["max_abs_diff"]["sum_logits"] < 1e-4
    assert session(out).get_outputs()[1].name == "sum_logits"


def test_cli_refuses_existing_output_unless_forced(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.onnx"
    out.write_bytes(b"precious")
    one_line_error(export(str(tiny_checkpoint), "--out", str(out)), "--force")
    assert out.read_bytes() == b"precious"
    assert export(str(tiny_checkpoint), "--out", str(out), "--force", "--verify-images", "20").exit_code == 0
    session(out)


def test_cli_bad_checkpoints_are_one_line(tmp_path: Path, tiny_checkpoint: Path) -> None:
    one_line_error(export(str(tmp_path / "missing.pt")), "not found")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 50)
    one_line_error(export(str(junk)), "not a readable checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(3)}}, other)
    one_line_error(export(str(other)), "not a digitsum-edge checkpoint")
    future = tmp_path / "future.pt"
    torch.save({**checkpoint.load(tiny_checkpoint), "format_version": 99}, future)
    one_line_error(export(str(future)), "format 99")
    assert not any(p.suffix == ".onnx" for p in tmp_path.iterdir())


def test_cli_unwritable_output_is_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    one_line_error(export(str(tiny_checkpoint), "--out", str(blocker / "m.onnx")), "cannot write")


def test_the_sum_heads_one_hot_lookup_is_f_one_hot_bit_for_bit(tiny_checkpoint: Path) -> None:
    """The lookup that converts to LiteRT and TFLite Micro computes exactly what F.one_hot computed."""
    import torch.nn.functional as F

    model, _ = checkpoint.load_model(tiny_checkpoint)
    head = model.adder
    digit_logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 8
    rand = torch.arange(500) % 10
    with torch.no_grad():
        got = head(digit_logits, rand)
        probs = digit_logits.float().softmax(dim=1)
        onehot = F.one_hot(rand, head.num_rand).to(probs.dtype)
        want = head.table((probs.unsqueeze(2) * onehot.unsqueeze(1)).flatten(1))
    assert torch.equal(got, want)
    assert "adder.rand_codes" not in model.state_dict()  # no new weight: checkpoints stay as they were


def test_the_verdict_travels_in_the_json(cli_export: tuple[Result, Path, Path]) -> None:
    result, _, report = cli_export
    assert result.exit_code == 0, result.output
    verdict = json.loads(report.read_text())["files"][0]["verdict"]
    assert verdict["pass"] and verdict["failures"] == [] and "argmax agreement 100.00%" in verdict["checks"][1]


def test_a_failed_verification_names_every_failure(tiny_checkpoint: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from digitsum_edge.export import verify

    def disagreeing(*args, **kwargs) -> verify.Comparison:
        heads = ("digit_logits", "sum_logits")
        return verify.Comparison(10, dict.fromkeys(heads, 0.3), dict.fromkeys(heads, 0.9),
                                 {"digit_accuracy": 0.9, "sum_accuracy": 0.9})

    monkeypatch.setattr("digitsum_edge.export.pipeline.compare", disagreeing)
    with pytest.raises(DigitsumError) as info:
        run(ExportConfig(checkpoint=str(tiny_checkpoint), out=str(tmp_path / "m.onnx"), verify_images=10))
    message = str(info.value)
    assert message.startswith(f"verification failed for {tmp_path / 'm.onnx'}: ") and "\n" not in message
    assert "largest logit difference 3.00e-01" in message and "argmax agreement 90.0000%" in message
    assert list(tmp_path.iterdir()) == []


def test_litert_without_its_extra_names_it(tiny_checkpoint: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "litert_torch" else real(name, *a))
    result = export(str(tiny_checkpoint), "--format", "litert", "--out", str(tmp_path / "m.tflite"))
    one_line_error(result, 'export --format litert needs the litert-export extra: pip install '
                           '"digitsum-edge[litert-export]"')
    assert list(tmp_path.iterdir()) == []
