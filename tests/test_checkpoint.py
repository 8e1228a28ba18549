"""The checkpoint file: round trip, format checks, rebuilding the model, the weights fingerprint, unsafe pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from digitsum_edge import checkpoint
from digitsum_edge.errors import DigitsumError
from digitsum_edge.model import DigitSumNet, ModelConfig
from helpers import ExecsCode, RunsCode


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint: Path) -> dict:
    return checkpoint.load(tiny_checkpoint)


def _forward(model: DigitSumNet) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.linspace(-1, 2, 3 * 28 * 28).reshape(3, 1, 28, 28)
    with torch.no_grad():
        return model(images, torch.tensor([0, 4, 9]))


def _eq_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_save_load_round_trip(tiny: dict, tmp_path: Path) -> None:
    model = checkpoint.build_model(tiny)
    path = tmp_path / "sub" / "model.pt"  # the folder does not exist yet
    metrics = {"digit_accuracy": 0.9512, "epochs": [1, 2]}
    checkpoint.save(path, model, train_config={"epochs": 3, "seed": 0}, metrics=metrics,
                    train_state={"epoch": 2}, complete=False)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temporary file left

    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain data and tensors only
    assert raw["format"] == checkpoint.FORMAT and raw["format_version"] == checkpoint.FORMAT_VERSION
    assert raw["train_config"] == {"epochs": 3, "seed": 0} and raw["metrics"] == metrics
    assert raw["complete"] is False and raw["train_state"] == {"epoch": 2}
    assert raw["versions"] == checkpoint.versions() and raw["versions"]["torch"] == str(torch.__version__)
    assert raw["model_config"] == model.config.to_dict()

    loaded, ckpt = checkpoint.load_model(path)
    assert not loaded.training  # rebuilt in eval mode
    assert _eq_state(loaded.state_dict(), model.state_dict())
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())
    for a, b in zip(_forward(loaded), _forward(model), strict=True):
        assert torch.equal(a, b)


def test_the_tiny_checkpoint_rebuilds_the_network_it_describes(tiny: dict) -> None:
    model = checkpoint.build_model(tiny)
    assert model.config == ModelConfig.from_dict(tiny["model_config"]) and model.config.channels == (8, 16, 32)
    assert tiny["complete"] is True
    digit_logits, sum_logits = _forward(model)
    assert digit_logits.shape == (3, 10) and sum_logits.shape == (3, 19)


def test_missing_truncated_and_foreign_files(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(DigitsumError, match="not found"):
        checkpoint.load(tmp_path / "nope.pt")
    with pytest.raises(DigitsumError, match="not found"):
        checkpoint.load(tmp_path)  # a folder is not a checkpoint file
    half = tmp_path / "half.pt"
    data = tiny_checkpoint.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(DigitsumError, match=r"half\.pt is not a readable checkpoint"):
        checkpoint.load(half)


@pytest.mark.parametrize("content", [b"hello\n", b"abc", b"x", b'{"format": 1}', b"\x80\x02]q\x00.", b"PK\x03\x04junk"],
                         ids=["text", "abc", "x", "json", "pickle-list", "zip-header"])
def test_a_file_that_is_not_a_checkpoint_is_one_error(tmp_path: Path, content: bytes) -> None:
    """Whatever bytes a user points at: one DigitsumError naming the file, never a bare Python exception."""
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(DigitsumError, match=r"notes\.pt is not a (readable|digitsum-edge) checkpoint") as info:
        checkpoint.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("obj", "match"), [
    ({"state_dict": {}}, "not a digitsum-edge checkpoint"),
    ({"format": "someone-else", "format_version": 1}, "not a digitsum-edge checkpoint"),
    ([1, 2, 3], "not a digitsum-edge checkpoint"),
    ({"format": checkpoint.FORMAT, "format_version": 2}, "has checkpoint format 2, this digitsum-edge reads format 1"),
    ({"format": checkpoint.FORMAT}, "has checkpoint format None"),
])
def test_format_checks(tmp_path: Path, obj: object, match: str) -> None:
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    with pytest.raises(DigitsumError, match=match) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_tampered_version_of_the_real_checkpoint_is_refused(tiny: dict, tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({**tiny, "format_version": checkpoint.FORMAT_VERSION + 1}, path)
    with pytest.raises(DigitsumError, match="checkpoint format"):
        checkpoint.load(path)


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize("change", ["missing weight", "extra weight", "wrong shape", "wider config",
                                    "unknown config key", "no model_config", "no state_dict"])
def test_build_model_refuses_a_mismatched_state_dict(tiny: dict, change: str) -> None:
    state = dict(tiny["state_dict"])
    config = dict(tiny["model_config"])
    first = next(iter(state))
    ckpt = {**tiny}
    if change == "missing weight":
        ckpt["state_dict"] = _without(state, first)
    elif change == "extra weight":
        ckpt["state_dict"] = {**state, "head.extra": torch.zeros(3)}
    elif change == "wrong shape":
        ckpt["state_dict"] = {**state, first: torch.zeros(*state[first].shape[:-1], state[first].shape[-1] + 1)}
    elif change == "wider config":
        ckpt["model_config"] = {**config, "channels": [16, 32, 64]}
    elif change == "unknown config key":
        ckpt["model_config"] = {**config, "dropout": 0.5}
    elif change == "no model_config":
        ckpt = _without(tiny, "model_config")
    else:
        ckpt = _without(tiny, "state_dict")
    with pytest.raises(DigitsumError, match=r"model\.pt does not hold a model this version can rebuild") as info:
        checkpoint.build_model(ckpt, "model.pt")
    assert "\n" not in str(info.value)


def test_weights_sha256_is_stable_and_sees_every_change(tiny: dict) -> None:
    state = tiny["state_dict"]
    reference = checkpoint.weights_sha256(state)
    assert len(reference) == 64 and set(reference) <= set("0123456789abcdef")
    copied = {k: v.clone() for k, v in reversed(list(state.items()))}  # other order, other storage
    assert checkpoint.weights_sha256(copied) == reference
    assert checkpoint.weights_sha256(checkpoint.build_model(tiny).state_dict()) == reference

    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    for index in (0, state[name].numel() - 1):  # the first or the last element of one tensor
        nudged = dict(state)
        flat = state[name].clone().reshape(-1)
        flat[index] = torch.nextafter(flat[index], flat[index] + 1)  # the smallest possible change
        nudged[name] = flat.reshape(state[name].shape)
        assert checkpoint.weights_sha256(nudged) != reference
    assert checkpoint.weights_sha256(state) == reference  # the original was not touched

    renamed = {(k + "_" if k == name else k): v for k, v in state.items()}  # same bytes in the same order
    assert sorted(renamed).index(name + "_") == sorted(state).index(name)
    assert checkpoint.weights_sha256(renamed) != reference
    same_bytes = {k: (v.view(torch.int32) if k == name else v) for k, v in state.items()}  # float32 bits as int32
    assert checkpoint.weights_sha256(same_bytes) != reference
    as_double = {k: (v.double() if k == name else v) for k, v in state.items()}
    assert checkpoint.weights_sha256(as_double) != reference
    assert checkpoint.weights_sha256(_without(state, name)) != reference


def test_weights_sha256_of_a_fresh_model_differs_from_the_trained_one(tiny: dict) -> None:
    torch.manual_seed(0)
    fresh = DigitSumNet(ModelConfig.from_dict(tiny["model_config"]))
    assert checkpoint.weights_sha256(fresh.state_dict()) != checkpoint.weights_sha256(tiny["state_dict"])


def test_a_checkpoint_whose_pickle_runs_a_command_is_refused_without_running_it(tiny: dict, tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran-code"
    path = tmp_path / "evil.pt"
    torch.save({**tiny, "state_dict": RunsCode(f"touch '{marker}'")}, path)
    with pytest.raises(DigitsumError, match="refused without running them") as info:
        checkpoint.load(path)
    assert not marker.exists()
    assert "evil.pt" in str(info.value) and "\n" not in str(info.value)


def test_a_plain_pickle_that_execs_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran-code"
    path = tmp_path / "evil_plain.pt"
    path.write_bytes(pickle.dumps(ExecsCode(f"open({str(marker)!r}, 'w').write('ran')"), protocol=2))
    with pytest.raises(DigitsumError, match=r"evil_plain\.pt is not a readable checkpoint"):
        checkpoint.load(path)
    assert not marker.exists()
    # the same bytes really run code when unpickled without the guard: the test's pickle is a live one
    pickle.loads(path.read_bytes())
    assert marker.read_text() == "ran"
