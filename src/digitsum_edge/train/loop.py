"""`digitsum-edge train`: the whole training set in one tensor, batched augmentation, exhaustive eval."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from digitsum_edge import checkpoint, mnist
from digitsum_edge.errors import DigitsumError, Interrupted
from digitsum_edge.evaluate import torch_exhaustive
from digitsum_edge.files import write_json
from digitsum_edge.model import DigitSumNet, ModelConfig, count_macs, count_params
from digitsum_edge.train.augment import random_affine
from digitsum_edge.train.config import TrainConfig
from digitsum_edge.train.report import plot_curves, plot_errors

# Settings a resumed run takes from its checkpoint: changing them mid-run would make it another run.
RUN_FIELDS = ("batch_size", "lr", "sum_head_lr_scale", "weight_decay", "label_smoothing", "warmup", "augment",
              "channels", "seed", "limit")


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when usable, else cpu; 'cuda' without a usable GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitsumError("--device cuda: no usable CUDA device (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise DigitsumError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def _lr_factor(step: int, total: int, warmup: float) -> float:
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def _seeded(*parts: int) -> torch.Generator:
    """A CPU generator for one (seed, epoch[, batch]): any batch can be replayed exactly on resume."""
    return torch.Generator().manual_seed(hash(parts) & 0x7FFF_FFFF_FFFF)


def _setup(cfg: TrainConfig) -> tuple[TrainConfig, dict | None]:
    out_ckpt = Path(cfg.out) / "model.pt"
    if cfg.resume is None:
        if out_ckpt.exists() and not cfg.force:
            raise DigitsumError(f"{out_ckpt} exists: continue it with --resume {out_ckpt}, replace it with "
                                f"--force, or choose another --out")
        return cfg, None
    ckpt = checkpoint.load(cfg.resume)
    if not ckpt.get("train_state"):
        raise DigitsumError(f"{cfg.resume} holds no training state to resume from")
    saved = ckpt["train_config"]
    run_settings = {k: saved.get(k, getattr(cfg, k)) for k in RUN_FIELDS}
    run_settings["channels"] = tuple(run_settings["channels"])
    epochs = cfg.epochs if cfg.epochs is not None else saved["epochs"]
    return replace(cfg, epochs=epochs, **run_settings), ckpt


def run(cfg: TrainConfig) -> TrainResult:
    """Train (or resume), evaluate exhaustively every epoch, write model.pt, metrics.json and plots."""
    cfg, resume = _setup(cfg)
    cfg = replace(cfg, epochs=cfg.epochs if cfg.epochs is not None else TrainConfig.default_epochs)
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise DigitsumError("--epochs must be at least 1 and --batch-size at least 2")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt_path = out / "model.pt"

    train, test = mnist.load("train", cfg.data_dir), mnist.load("test", cfg.data_dir)
    if cfg.limit:
        train = mnist.Split(train.images[:cfg.limit], train.labels[:cfg.limit])
    train_images = train.images.unsqueeze(1).to(device)  # (N, 1, 28, 28) uint8, lives on the device
    train_labels = train.labels.long().to(device)  # (N,)
    n = len(train_labels)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch (BatchNorm)
    total_steps = cfg.epochs * steps_per_epoch

    torch.manual_seed(cfg.seed)
    model_cfg = ModelConfig(channels=tuple(cfg.channels))
    model = DigitSumNet(model_cfg).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([
        {"params": model.reader.parameters()},
        {"params": model.adder.parameters(), "lr": cfg.lr * cfg.sum_head_lr_scale},
    ], lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, total_steps, cfg.warmup))
    state = {"epoch": 0, "batch": 0, "step": 0, "train_seconds": 0.0, "history": [],
             "loss_sum": 0.0, "digit_correct": 0, "sum_correct": 0, "seen": 0}
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        ts = resume["train_state"]
        optimizer.load_state_dict(ts["optimizer"])
        scheduler.load_state_dict(ts["scheduler"])
        state.update({k: ts[k] for k in state})
    step_model = torch.compile(model) if cfg.compile and device.type == "cuda" else model
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    params, macs = count_params(model), count_macs(model)

    def save(complete: bool, metrics: dict) -> None:
        train_state = {**state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        checkpoint.save(ckpt_path, model, train_config=cfg.to_dict(), metrics=metrics,
                        train_state=train_state, complete=complete)

    metrics: dict = state["history"][-1] if state["history"] else {}
    bar = None
    try:
        while state["epoch"] < cfg.epochs:
            epoch = state["epoch"]
            gen = _seeded(cfg.seed, epoch)
            order = torch.randperm(n, generator=gen).to(device)
            rands = torch.randint(0, model_cfg.num_rand, (n,), generator=gen).to(device)  # fresh every epoch
            model.train()
            bar = tqdm(total=steps_per_epoch, initial=state["batch"], desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not cfg.progress, leave=False, dynamic_ncols=True)
            started = time.perf_counter()
            while state["batch"] < steps_per_epoch:
                idx = order[state["batch"] * cfg.batch_size:(state["batch"] + 1) * cfg.batch_size]
                x = train_images[idx].float().div_(255)  # (B, 1, 28, 28) in [0, 1]
                if cfg.augment:
                    x = random_affine(x, _seeded(cfg.seed, epoch, state["batch"]))
                x = ((x - mnist.MEAN) / mnist.STD).contiguous(memory_format=torch.channels_last)
                digit_true, rand = train_labels[idx], rands[idx]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    digit_logits, sum_logits = step_model(x, rand)
                    loss = F.cross_entropy(digit_logits.float(), digit_true, label_smoothing=cfg.label_smoothing) \
                        + F.cross_entropy(sum_logits.float(), digit_true + rand, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                state["loss_sum"] += float(loss.detach()) * len(idx)
                state["digit_correct"] += int((digit_logits.argmax(1) == digit_true).sum())
                state["sum_correct"] += int((sum_logits.argmax(1) == digit_true + rand).sum())
                state["seen"] += len(idx)
                state["batch"] += 1
                state["step"] += 1
                bar.update()
                if state["batch"] % 20 == 0 or state["batch"] == steps_per_epoch:
                    bar.set_postfix(loss=f"{state['loss_sum'] / state['seen']:.4f}",
                                    acc=f"{100 * state['digit_correct'] / state['seen']:.2f}%")
            if device.type == "cuda":
                torch.cuda.synchronize()
            state["train_seconds"] += time.perf_counter() - started
            bar.close()
            metrics, digit_logits_all, _ = torch_exhaustive(model, test.images, test.labels, device)
            state["history"].append({
                "epoch": epoch + 1, "train_seconds": round(state["train_seconds"], 3),
                "train_loss": state["loss_sum"] / state["seen"],
                "train_digit_accuracy": state["digit_correct"] / state["seen"],
                "train_sum_accuracy": state["sum_correct"] / state["seen"], **metrics})
            state.update(epoch=epoch + 1, batch=0, loss_sum=0.0, digit_correct=0, sum_correct=0, seen=0)
            if cfg.progress:
                tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: loss {state['history'][-1]['train_loss']:.4f}, "
                           f"test digit {100 * metrics['digit_accuracy']:.2f}%, "
                           f"sum {100 * metrics['sum_accuracy']:.2f}% ({state['train_seconds']:.1f} s)")
            save(complete=state["epoch"] == cfg.epochs, metrics=metrics)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        save(complete=False, metrics=metrics)
        raise Interrupted(f"interrupted in epoch {state['epoch'] + 1}/{cfg.epochs}; checkpoint saved, "
                          f"continue with: digitsum-edge train --resume {ckpt_path}") from None

    summary = {
        **{k: metrics[k] for k in ("digit_accuracy", "sum_accuracy", "sum_consistency", "pairs")},
        "params": params, "macs": macs, "train_seconds": round(state["train_seconds"], 3),
        "device": str(device), "threads": torch.get_num_threads(), "epochs": cfg.epochs,
        "train_images": n, "versions": checkpoint.versions(), "history": state["history"],
    }
    summary["misread_test_digits"] = plot_errors(test.images, test.labels, digit_logits_all[::10].argmax(1),
                                                 out / "errors.png")
    plot_curves(state["history"], out / "curves.png")
    save(complete=True, metrics=summary)
    write_json(out / "metrics.json", summary)
    return TrainResult(checkpoint=ckpt_path, metrics=summary)

