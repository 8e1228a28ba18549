"""What bench runs: one small interface over PyTorch eager, torch.compile and every exported file's runtime.

Every backend takes the same host arrays, image (N, 1, 28, 28) float32 MNIST-normalised and rand (N,)
int64, and returns host arrays (digit_logits (N, 10), sum_logits (N, 19)), so every timing includes the
same work: inputs in, logits out.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from digitsum_edge import onnx_contract
from digitsum_edge.engine.factory import open_model
from digitsum_edge.errors import DigitsumError
from digitsum_edge.evaluate import backend_exhaustive, batched_logits, exhaustive_pairs, score, torch_exhaustive

PROVIDERS = ("cpu", "cuda")


def resolve_providers(spec: str, cuda_ok: bool) -> tuple[list[str], list[str]]:
    """'auto' | 'cpu' | 'cuda' | 'cpu,cuda' -> (providers to run, notes); anything else is one error."""
    names = [p.strip().lower() for p in spec.split(",") if p.strip()]
    if names == ["auto"]:
        if cuda_ok:
            return ["cpu", "cuda"], []
        return ["cpu"], ["CUDA not usable here: onnxruntime runs on the CPU provider only"]
    unknown = [p for p in names if p not in PROVIDERS]
    if not names or unknown:
        raise DigitsumError(f"unknown provider {(unknown or [spec])[0]!r} in --providers {spec!r} "
                            "(use auto, cpu, cuda or cpu,cuda)")
    if "cuda" in names and not cuda_ok:
        raise DigitsumError("--providers cuda: CUDA is not usable here (no CUDA device or no working "
                            "CUDAExecutionProvider); use --providers cpu")
    return [p for p in PROVIDERS if p in names], []


class Backend:
    """One way to run the model: name, device/provider, precision and the file it runs."""

    name = "backend"
    optional = False  # a failure to start makes a skipped row instead of an error
    largest_batch: int | None = None  # timed at batch sizes up to this (TFLite Micro: 1); None: every size

    def __init__(self, device: str, precision: str, source: Path) -> None:
        self.device, self.precision, self.source = device, precision, Path(source)

    @property
    def label(self) -> str:
        return f"{self.name} {self.device} {self.precision}"

    def set_threads(self, threads: int) -> None:
        """Use `threads` intra-op threads from now on (one inter-op thread)."""

    def run(self, images: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (only torch on CUDA queues any)."""

    def first_call(self, images: np.ndarray, rand: np.ndarray) -> float:
        """Run once outside the timings (torch.compile compiles here); seconds it took."""
        start = time.perf_counter()
        self.run(images, rand)
        self.sync()
        return time.perf_counter() - start

    def exhaustive(self, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        """Scores and logits on every (image, rand) pair, uint8 images, exhaustive_pairs order."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"label": self.label, "backend": self.name, "device": self.device,
                "precision": self.precision, "source": str(self.source)}


def full_fp32_on_cuda() -> None:
    """PyTorch's CUDA rows are fp32 rows: no TF32 in convolutions (cuDNN's default) or matrix products, whose
    10-bit mantissas move logits by ~1e-3, over the fp32 tolerance every row is checked against (the CUDA
    provider's sessions turn it off too, engine/onnx_runtime.py). Process-wide, as torch keeps it."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


class TorchEager(Backend):
    """The checkpoint's model in PyTorch eager mode, under torch.inference_mode."""

    name = "pytorch"

    def __init__(self, model, device: str, source: Path) -> None:
        super().__init__(device, "fp32", source)
        if device == "cuda":
            full_fp32_on_cuda()
        self.model = model.to(device).eval()

    def set_threads(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)

    def _forward(self, image, rand):
        return self.model(image, rand)

    def run(self, images: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            digit_logits, sum_logits = self._forward(torch.from_numpy(images).to(self.device),
                                                     torch.from_numpy(rand).to(self.device))
            return digit_logits.cpu().numpy(), sum_logits.cpu().numpy()

    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def exhaustive(self, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        return torch_exhaustive(self.model, images, labels, self.device)


class TorchCompiled(TorchEager):
    """torch.compile (inductor, static shapes: one compilation per batch size, done before any timing)."""

    name = "torch.compile"
    optional = True

    def __init__(self, model, device: str, source: Path, eval_batch: int) -> None:
        import torch

        super().__init__(model, device, source)
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPU
        self.compiled = torch.compile(self.model, dynamic=False)
        self._compiled_batches: set[int] = set()
        self.eval_batch = eval_batch  # parity runs in chunks of a batch size already compiled

    def _forward(self, image, rand):
        if image.shape[0] in self._compiled_batches:
            return self.compiled(image, rand)
        import torch._dynamo

        # one graph per batch size; past the default limit of 8 dynamo would fall back to eager silently
        with torch._dynamo.config.patch(recompile_limit=64, fail_on_recompile_limit_hit=True):
            outputs = self.compiled(image, rand)
        self._compiled_batches.add(image.shape[0])
        return outputs

    def exhaustive(self, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        image_index, rand = exhaustive_pairs(len(images), self.model.config.num_rand)
        digit_logits, sum_logits = batched_logits(self.run, images[image_index], rand, onnx_contract.MEAN,
                                                  onnx_contract.STD, self.eval_batch, pad=True)
        return score(digit_logits, sum_logits, labels[image_index], rand), digit_logits, sum_logits


class Exported(Backend):
    """An exported file through the runtime's one door (engine/factory.py), on one provider; one loaded copy
    per thread count."""

    optional = False

    def __init__(self, path: Path, provider: str, threads: int, opener=open_model) -> None:
        self.backend = opener(path, provider=provider, threads=threads)
        if self.backend.provider != provider:
            raise DigitsumError(f"{path}: {self.backend.runtime} opened it on {self.backend.provider}, not {provider}")
        self._loaded = {threads: self.backend}
        self.name = self.backend.runtime
        super().__init__(provider, self.backend.info.precision, path)
        self.info: onnx_contract.ModelInfo = self.backend.info

    def set_threads(self, threads: int) -> None:
        if threads not in self._loaded:
            self._loaded[threads] = self.backend.reopen(threads)
        self.backend = self._loaded[threads]

    def run(self, images: np.ndarray, rand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.backend.run(images, rand)

    def exhaustive(self, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        return backend_exhaustive(self.backend, images, labels)
