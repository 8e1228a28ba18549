"""What the runtime says on ARM64 (Linux aarch64) about the extras that have no wheels there."""

from __future__ import annotations

import pytest


def test_an_extra_without_arm64_wheels_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """On ARM64, `export --format litert` names the missing wheels instead of a pip command that would fail."""
    from digitsum_edge import extras
    from digitsum_edge.errors import DigitsumError

    monkeypatch.setattr(extras, "missing", lambda extra: ["litert_torch"])
    monkeypatch.setattr(extras.platform, "machine", lambda: "aarch64")
    with pytest.raises(DigitsumError) as raised:
        extras.require("litert-export", "export --format litert")
    assert str(raised.value) == ("export --format litert needs the litert-export extra, which has no wheels for "
                                 "aarch64 (litert-converter and tflite-micro have no Linux aarch64 wheels): run it "
                                 "on an x86-64 machine")
    with pytest.raises(DigitsumError, match=r'pip install "digitsum-edge\[litert\]"'):  # litert has the wheels
        extras.require("litert", "a .tflite file")
    monkeypatch.setattr(extras.platform, "machine", lambda: "x86_64")
    with pytest.raises(DigitsumError, match=r'pip install "digitsum-edge\[litert-export\]"'):
        extras.require("litert-export", "export --format litert")
