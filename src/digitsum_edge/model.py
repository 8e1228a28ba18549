"""DigitSumNet: a small CNN reads the digit, a learned bilinear head adds `rand` to it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from digitsum_edge import onnx_contract


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    channels: tuple[int, ...] = (16, 24, 48, 96)  # conv widths; every stage but the last halves the size (max-pool)
    convs_per_stage: int = 1  # 3x3 conv-BN-ReLU layers per stage
    pool_first: bool = True  # pool straight after a stage's last conv, so BatchNorm and ReLU run on 4x fewer values
    stem_stride: int = 1  # 2: the first conv strides by 2 in place of the first stage's max-pool (same sizes after)
    num_digits: int = onnx_contract.NUM_DIGITS  # digit classes
    num_rand: int = onnx_contract.NUM_RAND  # rand takes values 0 .. num_rand-1

    @property
    def num_sums(self) -> int:
        return self.num_digits + self.num_rand - 1  # sums 0..18

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        d = {"pool_first": False, "stem_stride": 1, **d}  # 0.2 pooled after the ReLU; before 0.4 no strided stem
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})  # type: ignore[arg-type]


def _stage(c_in: int, width: int, convs: int, pool: bool, pool_first: bool, stride: int = 1) -> list[nn.Module]:
    """`convs` 3x3 conv-BN-ReLU layers, then a 2x2 max-pool; with pool_first the pool comes before the last BN.

    Pooling before BatchNorm and ReLU is the cheaper order (airbench's): on a CPU, BatchNorm and ReLU at
    28x28 cost more than the convolutions; this order took a bf16 training step of the default model from
    13.4 to 7.5 ms (batch 128, 2 threads, benchmarks/train_step.py). stride: of the stage's first conv.
    """
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv2d(c_in if i == 0 else width, width, 3, stride=stride if i == 0 else 1, padding=1,
                                bias=False))
        if pool and pool_first and i == convs - 1:
            layers.append(nn.MaxPool2d(2))
        layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    if pool and not pool_first:
        layers.append(nn.MaxPool2d(2))
    return layers


class DigitCNN(nn.Module):
    """(N, 1, 28, 28) MNIST-normalised image -> (N, num_digits) digit logits."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for stage, width in enumerate(cfg.channels):
            strided = stage == 0 and cfg.stem_stride > 1  # the strided conv halves the size instead of a pool
            pool = stage < len(cfg.channels) - 1 and not strided
            layers += _stage(c_in, width, cfg.convs_per_stage, pool, cfg.pool_first, cfg.stem_stride if strided else 1)
            c_in = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, cfg.num_digits)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.features(image)  # (N, C, H, W)
        return self.classifier(x.amax(dim=(2, 3)))  # global max-pool -> (N, C) -> (N, 10)


class SumHead(nn.Module):
    """Learns addition: sum_logits[s] = sum over d of p(digit = d) * W[d, rand, s].

    This is nn.Bilinear(num_digits, num_rand, num_sums) on the digit probabilities and one-hot rand,
    written as an outer product and one Linear so that the exported graph is plain Mul/Reshape/Gemm.
    With one-hot rand it is a learned 10x19 table per rand value; exact addition is a table that is
    high where d + rand = s and equally low elsewhere, and then argmax(sum) = argmax(digit) + rand.
    No bias: a per-sum bias is shared by every rand value and would tilt close calls off digit + rand.
    The table wants entries of order ten, so training gives it a larger learning rate.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_rand = cfg.num_rand
        # One-hot rand as a lookup in the identity (the same values as F.one_hot, bit for bit). F.one_hot does not
        # convert to LiteRT (its range assertion, aten._assert_async, has no lowering), and a comparison with
        # arange becomes TFLite's ONE_HOT, which TFLite Micro lacks; EMBEDDING_LOOKUP runs in both. Not
        # persistent: it is no weight, and checkpoints stay as they were.
        self.rand_codes: torch.Tensor
        self.register_buffer("rand_codes", torch.eye(cfg.num_rand), persistent=False)
        self.table = nn.Linear(cfg.num_digits * cfg.num_rand, cfg.num_sums, bias=False)

    def forward(self, digit_logits: torch.Tensor, rand: torch.Tensor) -> torch.Tensor:
        digit_probs = digit_logits.float().softmax(dim=1)  # (N, 10)
        rand_onehot = F.embedding(rand, self.rand_codes).to(digit_probs.dtype)  # (N, 10) one-hot rows
        pairs = digit_probs.unsqueeze(2) * rand_onehot.unsqueeze(1)  # (N, 10, 10)
        return self.table(pairs.flatten(1))  # (N, 19)


class DigitSumNet(nn.Module):
    """Two inputs (image, rand), two outputs (digit_logits, sum_logits)."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.config = cfg or ModelConfig()
        self.reader = DigitCNN(self.config)
        self.adder = SumHead(self.config)

    def forward(self, image: torch.Tensor, rand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image (N, 1, 28, 28) float32 MNIST-normalised, rand (N,) int64 in 0-9."""
        # Checked where the values are on the host: reading a GPU tensor's values would make every training step
        # wait for the GPU (the training loop and the benchmarks make rand themselves, in range).
        if rand.device.type == "cpu" and not (torch.jit.is_tracing() or torch.compiler.is_compiling()
                                               or torch.onnx.is_in_onnx_export()):
            onnx_contract.check_rand(rand, self.config.num_rand)
        digit_logits = self.reader(image)
        return digit_logits, self.adder(digit_logits, rand)

    def param_groups(self, lr: float, sum_head_lr_scale: float) -> list[dict]:
        """Optimizer groups: the digit CNN at `lr`, the sum table faster (its entries must grow to ~10)."""
        return [{"params": list(self.reader.parameters())},
                {"params": list(self.adder.parameters()), "lr": lr * sum_head_lr_scale}]

    @torch.no_grad()
    def exhaustive_logits(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image with every rand: (N*num_rand, 10) digit and (N*num_rand, 19) sum logits, image-major.

        The CNN sees each image once and only the sum head runs per rand; in eval mode this is exactly
        forward(image, rand) for every pair, num_rand times cheaper.
        """
        digit = self.reader(image).float()  # (N, 10)
        rand = torch.arange(self.config.num_rand, device=image.device).repeat(len(image))  # (N*10,)
        digit_pairs = digit.repeat_interleave(self.config.num_rand, dim=0)  # (N*10, 10)
        return digit_pairs, self.adder(digit_pairs, rand).float()


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: DigitSumNet) -> int:
    """Multiply-accumulates for one image (conv and linear layers), measured with forward hooks on the model's
    own device (a model trained on CUDA is counted there)."""
    macs = 0
    device = next(model.parameters()).device

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            macs += output[0].numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, 28, 28, device=device), torch.zeros(1, dtype=torch.long, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return macs
