"""DigitSumNet shapes, dtypes, rand checks, and the size figures reported for it."""

from __future__ import annotations

import pytest
import torch

from digitsum_edge.model import DigitSumNet, ModelConfig, count_macs, count_params


def test_two_inputs_two_outputs_with_documented_shapes() -> None:
    model = DigitSumNet().eval()
    digit_logits, sum_logits = model(torch.randn(5, 1, 28, 28), torch.tensor([0, 3, 9, 4, 7]))
    assert digit_logits.shape == (5, 10) and sum_logits.shape == (5, 19)
    assert digit_logits.dtype == sum_logits.dtype == torch.float32


@pytest.mark.parametrize("rand", [torch.tensor([10]), torch.tensor([-1]), torch.tensor([1.0])])
def test_rand_out_of_range_or_not_integer_is_rejected(rand: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="rand"):
        DigitSumNet().eval()(torch.randn(1, 1, 28, 28), rand)


def test_sum_depends_on_rand_through_the_onehot_inside_the_model() -> None:
    model = DigitSumNet().eval()
    image = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    digit, total = model(image, torch.tensor([2, 5]))
    assert torch.equal(digit[0], digit[1])  # the digit branch does not see rand
    assert not torch.allclose(total[0], total[1])


def test_config_round_trip_and_unknown_key() -> None:
    cfg = ModelConfig(channels=(8, 16))
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})


def test_params_and_macs_counted_from_the_layers() -> None:
    model = DigitSumNet(ModelConfig(channels=(4, 8)))
    # conv 1->4 (36) + BN (8) + conv 4->8 (288) + BN (16) + linear 8->10 (90) + sum table 100->19 (1900)
    assert count_params(model) == 36 + 8 + 288 + 16 + 90 + 1900
    # 28x28x4 outputs x 9 + 14x14x8 outputs x 36 + 10 x 8 + 19 x 100
    assert count_macs(model) == 28 * 28 * 4 * 9 + 14 * 14 * 8 * 36 + 80 + 1900


def test_pool_first_changes_only_the_order_and_old_checkpoints_keep_theirs() -> None:
    new, old = DigitSumNet(ModelConfig(channels=(4, 8))), DigitSumNet(ModelConfig(channels=(4, 8), pool_first=False))
    kinds = [type(m).__name__ for m in new.reader.features]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU"]
    assert [type(m).__name__ for m in old.reader.features] == \
        ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU"]
    assert count_macs(new) == count_macs(old) and count_params(new) == count_params(old)
    legacy = {k: v for k, v in old.config.to_dict().items() if k != "pool_first"}  # a 0.2 checkpoint's config
    assert ModelConfig.from_dict(legacy).pool_first is False
    rebuilt = DigitSumNet(ModelConfig.from_dict(legacy))
    rebuilt.load_state_dict(old.state_dict())  # same keys, same layer order
    image, rand = torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3])
    assert torch.equal(rebuilt.eval()(image, rand)[0], old.eval()(image, rand)[0])


def test_strided_stem_replaces_the_first_pool_and_old_checkpoints_keep_theirs() -> None:
    pooled = DigitSumNet(ModelConfig(channels=(4, 8, 16)))
    strided = DigitSumNet(ModelConfig(channels=(4, 8, 16), stem_stride=2))
    kinds = [type(m).__name__ for m in strided.reader.features]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU",
                     "Conv2d", "BatchNorm2d", "ReLU"]
    assert strided.reader.features[0].stride == (2, 2)
    image = torch.randn(2, 1, 28, 28)
    assert strided.reader.features(image).shape == pooled.reader.features(image).shape == (2, 16, 7, 7)
    assert count_params(strided) == count_params(pooled)  # the same weights, one pool fewer
    assert count_macs(pooled) - count_macs(strided) == (28 * 28 - 14 * 14) * 4 * 9  # the first conv at 14x14
    legacy = {k: v for k, v in pooled.config.to_dict().items() if k != "stem_stride"}  # a 0.3 checkpoint's config
    assert ModelConfig.from_dict(legacy).stem_stride == 1


def test_macs_are_counted_on_the_models_own_device() -> None:
    """A model trained on CUDA is counted where it lives (training's metrics call count_macs on it). The meta
    device stands in for a GPU here: a zero image made on the CPU would not match its weights."""
    cpu = DigitSumNet(ModelConfig(channels=(4, 8)))
    assert count_macs(cpu.to("meta")) == count_macs(DigitSumNet(ModelConfig(channels=(4, 8))))


def test_rand_on_a_device_is_not_read_back_each_forward() -> None:
    """Reading a GPU tensor's values would make every training step wait for the GPU: only host rand is checked
    (on the meta device, reading any value is an error)."""
    model = DigitSumNet(ModelConfig(channels=(4, 8))).to("meta")
    image, rand = torch.zeros(2, 1, 28, 28, device="meta"), torch.zeros(2, dtype=torch.long, device="meta")
    digit_logits, sum_logits = model(image, rand)
    assert digit_logits.shape == (2, 10) and sum_logits.shape == (2, 19) and sum_logits.device.type == "meta"
