"""`digitsum-edge train`: build, then epoch by epoch train and evaluate, then finish the outputs.

The whole training set is one uint8 tensor on the device; each step indexes a batch, draws a fresh rand
for every image and warps every image by its own small random affine transform. Everything random comes
from generators seeded by (seed, epoch, batch), so an interrupted run resumes to the same weights.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from digitsum_edge import checkpoint, mnist
from digitsum_edge.errors import DigitsumError, Interrupted
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.files import check_folder, write_json
from digitsum_edge.layout import checkpoint_path
from digitsum_edge.model import DigitSumNet, ModelConfig, count_macs, count_params
from digitsum_edge.train import prepared
from digitsum_edge.train.config import TrainConfig
from digitsum_edge.train.device import cpu_isa, keep_freed_memory, resolve_device, use_bf16
from digitsum_edge.train.report import plot_curves, plot_errors
from digitsum_edge.train.step import batch_images, make_optimizer, train_step

log = logging.getLogger(__name__)

# Settings a resumed run takes from its checkpoint: changing them mid-run would make it another run.
RUN_FIELDS = ("batch_size", "lr", "sum_head_lr_scale", "weight_decay", "label_smoothing", "warmup", "augment",
              "stroke", "elastic", "prepared", "low_res_epochs", "low_res", "ema", "channels", "stem_stride", "seed",
              "limit", "holdout", "eval_images")


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict  # what metrics.json holds

    def summary(self) -> str:
        """One line: test (or held-out) accuracies, size, time, checkpoint."""
        m = self.metrics
        return (f"digit {100 * m['digit_accuracy']:.2f}% | sum {100 * m['sum_accuracy']:.2f}% | consistency "
                f"{100 * m['sum_consistency']:.2f}% ({m['pairs']:,} {m.get('evaluated_on', 'test')} pairs) | "
                f"{m['params']:,} params, {m['macs'] / 1e6:.2f} M MACs | {m['train_seconds']:.1f} s on {m['device']} | "
                f"{self.checkpoint}")


@dataclass
class TrainState:
    """What crosses batches and epochs; saved in every checkpoint so that --resume continues exactly."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches finished in the current epoch
    step: int = 0  # optimizer steps so far
    train_seconds: float = 0.0  # time spent in training steps (evaluation not counted)
    history: list[dict] = field(default_factory=list)  # one entry per finished epoch: train and test metrics
    loss_sum: float = 0.0  # running sums of the current epoch
    digit_correct: int = 0
    sum_correct: int = 0
    seen: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> TrainState:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})

    def new_epoch(self) -> None:
        self.epoch, self.batch, self.loss_sum, self.digit_correct, self.sum_correct, self.seen = \
            self.epoch + 1, 0, 0.0, 0, 0, 0


@dataclass
class Run:
    """One training run: its settings, data, model, optimizer and state."""

    cfg: TrainConfig
    device: torch.device
    bf16: bool  # autocast to bfloat16 in the training steps
    train_images: torch.Tensor  # (N, 1, 28, 28) uint8, on the device
    train_labels: torch.Tensor  # (N,) int64, on the device
    test: mnist.Split
    model: DigitSumNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    state: TrainState
    steps_per_epoch: int
    ema: torch.optim.swa_utils.AveragedModel | None = None  # exponential moving average of the weights
    last_eval: tuple[dict, np.ndarray] | None = None  # test metrics and digit logits of the current weights

    @property
    def checkpoint_path(self) -> Path:
        return checkpoint_path(self.cfg.out)

    @property
    def evaluated_on(self) -> str:
        """What the metrics are measured on: the test set, or held-out training images (--holdout)."""
        return "held-out" if self.cfg.holdout else "test"

    @property
    def deployed(self) -> DigitSumNet:
        """The weights that are evaluated, saved and exported: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model  # type: ignore[return-value]

    def save(self, metrics: dict, complete: bool) -> None:
        train_state = {**asdict(self.state), "optimizer": self.optimizer.state_dict(),
                       "scheduler": self.scheduler.state_dict()}
        if self.ema is not None:  # resume needs the raw weights too, and how many steps were averaged
            train_state["raw_state_dict"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            train_state["ema_steps"] = int(self.ema.n_averaged)
        checkpoint.save(self.checkpoint_path, self.deployed, train_config=self.cfg.to_dict(), metrics=metrics,
                        train_state=train_state, complete=complete)


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over the first `warmup` fraction of the steps, then cosine decay to zero."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def seeded(*parts: int) -> torch.Generator:
    """A CPU generator for one (seed, epoch[, batch]): any batch can be replayed exactly on resume."""
    value = 0
    for part in parts:  # a fixed polynomial mix of the parts, the same in every Python process
        value = (value * 1_000_003 + part) % 2**63
    return torch.Generator().manual_seed(value)


def epochs(cfg: TrainConfig) -> int:
    """The run's number of epochs, once settle_config has filled it in."""
    assert cfg.epochs is not None, "settle_config() fills in the epochs"
    return cfg.epochs


def settle_config(cfg: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """Complete the settings (a resumed run's own from its checkpoint) and check the output folder."""
    if (cfg.epochs is not None and cfg.epochs < 1) or cfg.batch_size < 2:
        raise DigitsumError("--epochs must be at least 1 and --batch-size at least 2")
    resume = None
    if cfg.resume is None:
        out_ckpt = checkpoint_path(cfg.out)
        if out_ckpt.exists() and not cfg.force:
            raise DigitsumError(f"{out_ckpt} exists: continue it with --resume {out_ckpt}, replace it with "
                                f"--force, or choose another --out")
    else:
        resume = checkpoint.load(cfg.resume)
        if not resume.get("train_state"):
            raise DigitsumError(f"{cfg.resume} holds no training state to resume from")
        saved = resume["train_config"]
        run_settings = {k: saved.get(k, getattr(cfg, k)) for k in RUN_FIELDS}
        run_settings["channels"] = tuple(run_settings["channels"])
        cfg = replace(cfg, epochs=cfg.epochs or saved["epochs"], **run_settings)
    check_folder(cfg.out)  # before any work: a run that cannot save must not start
    return replace(cfg, epochs=cfg.epochs or TrainConfig.default_epochs), resume


def build(cfg: TrainConfig, resume: dict | None) -> Run:
    """Data on the device, the model, AdamW with warm-up and cosine decay; restored from `resume`."""
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        keep_freed_memory()  # no page faults for the activations a step frees and allocates again
    bf16 = use_bf16(cfg.precision, device)
    train, test = mnist.load("train", cfg.data_dir), mnist.load("test", cfg.data_dir)
    if cfg.holdout:  # tune on the last training images and leave the test set unseen
        if not 0 < cfg.holdout < len(train) - 1:
            raise DigitsumError(f"--holdout must be between 1 and {len(train) - 2}, got {cfg.holdout}")
        test = mnist.Split(train.images[-cfg.holdout:], train.labels[-cfg.holdout:])
        train = mnist.Split(train.images[:-cfg.holdout], train.labels[:-cfg.holdout])
    test = mnist.Split(test.images[:cfg.eval_images], test.labels[:cfg.eval_images])  # None: all of them
    train = prepared.mix(mnist.Split(train.images[:cfg.limit], train.labels[:cfg.limit]), cfg.prepared, cfg.seed)
    n = len(train)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch (BatchNorm)

    torch.manual_seed(cfg.seed)
    # A resumed run keeps its checkpoint's network (a 0.2 checkpoint pools after BatchNorm and ReLU).
    model_cfg = (ModelConfig.from_dict(resume["model_config"]) if resume
                 else ModelConfig(channels=tuple(cfg.channels), stem_stride=cfg.stem_stride))
    model = DigitSumNet(model_cfg).to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    total_steps = epochs(cfg) * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, cfg.warmup))
    ema = None
    if cfg.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    state = TrainState()
    if resume is not None:
        saved = resume["train_state"]
        model.load_state_dict(saved.get("raw_state_dict", resume["state_dict"]))
        if ema is not None:
            ema.module.load_state_dict(resume["state_dict"])
            ema.n_averaged.fill_(saved.get("ema_steps", 0))
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = TrainState.from_dict(saved)
    log.info(f"training on {device}" + (" with bf16 autocast" if bf16 else " in fp32")
             + (f", evaluating on {len(test):,} held-out training images" if cfg.holdout else ""))
    return Run(cfg, device, bf16, torch.from_numpy(train.images[:n, None]).to(device),
               torch.from_numpy(train.labels[:n]).long().to(device), test, model, optimizer, scheduler, state,
               steps_per_epoch, ema)


def train_epoch(run: Run) -> None:
    """Optimizer steps from the state's batch to the end of the epoch, on fresh rand and augmentation."""
    cfg, state, model = run.cfg, run.state, run.model
    step_model = torch.compile(model) if cfg.compile and run.device.type == "cuda" else model
    epoch_gen = seeded(cfg.seed, state.epoch)
    n = len(run.train_labels)
    order = torch.randperm(n, generator=epoch_gen).to(run.device)
    rands = torch.randint(0, model.config.num_rand, (n,), generator=epoch_gen).to(run.device)  # fresh every epoch
    size = cfg.low_res if state.epoch < cfg.low_res_epochs else None  # None: full 28x28
    model.train()
    # A bar redraws itself ~130 times an epoch: on a terminal only; a log file gets end_epoch's one line an epoch.
    bar = tqdm(total=run.steps_per_epoch, initial=state.batch, desc=f"epoch {state.epoch + 1}/{cfg.epochs}",
               disable=not (log.isEnabledFor(logging.INFO) and sys.stderr.isatty()), leave=False, dynamic_ncols=True)
    # (loss sum, digits right, sums right) of this call's steps, kept on the device: reading them back every
    # step would make the CPU wait for the GPU each time; they join the state once, when the epoch stops.
    sums = torch.zeros(3, dtype=torch.float64, device=run.device)
    started = time.perf_counter()
    try:
        while state.batch < run.steps_per_epoch:
            idx = order[state.batch * cfg.batch_size:(state.batch + 1) * cfg.batch_size]
            x = batch_images(run.train_images[idx].float(),  # (B, 1, 28, 28), pixels 0-255
                             cfg, seeded(cfg.seed, state.epoch, state.batch) if cfg.augment else None, size)
            digit_true, rand = run.train_labels[idx], rands[idx]
            loss, digit_logits, sum_logits = train_step(step_model, run.optimizer, x, digit_true, rand,
                                                        cfg.label_smoothing, run.bf16)
            run.scheduler.step()
            if run.ema is not None:
                run.ema.update_parameters(model)
            sums += torch.stack([loss.double() * len(idx), (digit_logits.argmax(1) == digit_true).sum().double(),
                                 (sum_logits.argmax(1) == digit_true + rand).sum().double()])
            state.seen += len(idx)
            state.batch += 1
            state.step += 1
            bar.update()
            if state.batch % 20 == 0 and not bar.disable:  # the progress bar's figures: one read every 20 steps
                loss_sum, digit_correct, _ = sums.tolist()
                bar.set_postfix(loss=f"{(state.loss_sum + loss_sum) / state.seen:.4f}",
                                acc=f"{100 * (state.digit_correct + digit_correct) / state.seen:.2f}%")
    finally:
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        state.train_seconds += time.perf_counter() - started
        loss_sum, digit_correct, sum_correct = sums.tolist()
        state.loss_sum += loss_sum
        state.digit_correct += round(digit_correct)
        state.sum_correct += round(sum_correct)
        bar.close()
    run.last_eval = None  # the weights changed


def evaluate(run: Run) -> tuple[dict, np.ndarray]:
    """Exhaustive test metrics and (100,000, 10) digit logits of the current weights (cached until they change)."""
    if run.last_eval is None:
        metrics, digit_logits, _ = torch_exhaustive(run.deployed, run.test.images, run.test.labels, str(run.device))
        run.last_eval = metrics, digit_logits
    return run.last_eval


def end_epoch(run: Run) -> None:
    """Evaluate, record the epoch in the history, and save a checkpoint to resume from."""
    state = run.state
    metrics, _ = evaluate(run)
    state.history.append({
        "epoch": state.epoch + 1, "train_seconds": round(state.train_seconds, 3),
        "train_loss": state.loss_sum / state.seen, "train_digit_accuracy": state.digit_correct / state.seen,
        "train_sum_accuracy": state.sum_correct / state.seen, **metrics})
    state.new_epoch()
    log.info(f"epoch {state.epoch}/{run.cfg.epochs}: loss {state.history[-1]['train_loss']:.4f}, "
             f"{run.evaluated_on} digit {100 * metrics['digit_accuracy']:.2f}%, "
             f"sum {100 * metrics['sum_accuracy']:.2f}% "
             f"({state.train_seconds:.1f} s)")
    run.save(metrics, complete=False)  # complete only once metrics.json and the plots exist


def finish(run: Run) -> TrainResult:
    """The final checkpoint (marked complete), metrics.json, curves.png and errors.png."""
    out, state, model = Path(run.cfg.out), run.state, run.deployed
    metrics, digit_logits = evaluate(run)
    summary = {
        **{k: metrics[k] for k in ("digit_accuracy", "sum_accuracy", "sum_consistency", "pairs")},
        "evaluated_on": run.evaluated_on,
        "params": count_params(model), "macs": count_macs(model), "train_seconds": round(state.train_seconds, 3),
        "device": str(run.device), "precision": "bf16" if run.bf16 else "fp32", "cpu_isa": cpu_isa(),
        "threads": torch.get_num_threads(), "epochs": run.cfg.epochs,
        "train_images": len(run.train_labels), "versions": checkpoint.versions(), "history": state.history,
    }
    num_rand = model.config.num_rand
    summary["misread_test_digits"] = plot_errors(run.test.images, run.test.labels,
                                                 digit_logits[::num_rand].argmax(1), out / "errors.png")
    if state.history:
        plot_curves(state.history, out / "curves.png")
    write_json(out / "metrics.json", summary)
    run.save(summary, complete=True)
    return TrainResult(checkpoint=run.checkpoint_path, metrics=summary)


def run(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) the model; write model.pt after every epoch, then metrics.json and the plots."""
    cfg, resume = settle_config(cfg)
    current = build(cfg, resume)
    if current.state.epoch >= epochs(cfg):
        log.info(f"{cfg.resume} has finished all {cfg.epochs} epochs: nothing left to train, writing its outputs")
    try:
        while current.state.epoch < epochs(cfg):
            train_epoch(current)
            end_epoch(current)
    except KeyboardInterrupt:
        metrics = current.state.history[-1] if current.state.history else {}
        current.save(metrics, complete=False)
        raise Interrupted(f"interrupted in epoch {current.state.epoch + 1}/{cfg.epochs}; checkpoint saved, "
                          f"continue with: digitsum-edge train --resume {current.checkpoint_path}") from None
    return finish(current)
