"""Training state as plain data: one object that becomes a checkpoint dict and is restored
from one (nanoGPT's checkpoint dict, torchvision's ``{model, optimizer, lr_scheduler, epoch,
args}``).

``last.pt`` is ``TrainState.state_dict()``: weights, config, charset and every counter and
random state needed to continue exactly (``--resume``). ``best.pt`` is ``best_dict()``: the
same without what only resuming needs, with the weights that were validated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from crnn_ocr.config.schema import Config
from crnn_ocr.model.charset import Charset
from crnn_ocr.model.checkpoint import CheckpointError, inference_weights, load

if TYPE_CHECKING:
    from crnn_ocr.training.data import TrainingData

RESUME_KEYS = ("optimizer", "scheduler", "aug_rng", "torch_rng", "epoch", "step", "history")
"""What ``last.pt`` holds beyond a ``best.pt``: without these a checkpoint cannot be resumed."""
RESUME_ONLY = ("optimizer", "scheduler", "aug_rng", "torch_rng", "ema")
"""Left out of ``best.pt``, which is for using the model."""


def ema_with_warmup(decay: float):
    """``AveragedModel``'s update for a moving average whose decay grows with the number of
    updates n as min(decay, (1 + n) / (10 + n)) (TensorFlow's ``num_updates``): early on the
    average follows the weights, where a fixed 0.999 would sit near the random start for
    thousands of steps (a short run would validate its first weights)."""
    from torch.optim.swa_utils import get_ema_multi_avg_fn

    def update(averaged, current, n):
        n = float(n)
        get_ema_multi_avg_fn(min(decay, (1 + n) / (10 + n)))(averaged, current, n)
    return update


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, lr: float, cnn_share: float) -> list[dict]:
    """The optimizer's parameter groups: one, or the rest at ``lr`` and then the CNN's at
    ``lr * cnn_share`` (the schedule scales each group's own rate; the log shows the first)."""
    if cnn_share == 1:
        return [{"params": list(model.parameters())}]
    cnn = {id(p) for p in model.cnn.parameters()}
    return [{"params": [p for p in model.parameters() if id(p) not in cnn]},
            {"params": [p for p in model.parameters() if id(p) in cnn], "lr": lr * cnn_share}]


def new_state(config: Config, data: TrainingData, model: torch.nn.Module, steps_per_epoch: int,
              rank: int) -> TrainState:
    """A fresh ``TrainState``: AdamW, warm-up + cosine schedule, the moving average if asked."""
    t = config.train
    # An exponential moving average of the weights (and BatchNorm statistics): it smooths out
    # the noise of the last steps, so it usually validates better than the weights themselves.
    ema = None
    if t.ema:
        from torch.optim.swa_utils import AveragedModel

        ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(t.ema), use_buffers=True)
    optimizer = torch.optim.AdamW(param_groups(model, t.lr, t.cnn_lr), lr=t.lr, weight_decay=t.weight_decay)
    total_steps = steps_per_epoch * t.epochs
    warmup = max(1, round(t.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup, total_steps, t.min_lr_ratio))
    aug_rng = torch.Generator().manual_seed(t.seed + 1 + rank)
    return TrainState(config, data.charset, data.vocabulary, model, optimizer, scheduler, aug_rng, ema)


@dataclass
class Progress:
    """The counters of a run: where it is, what it has seen, when to stop."""

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best_cer: float = math.inf
    bad_epochs: int = 0
    skipped_steps: int = 0

    def record(self, row: dict) -> bool:
        """Add an epoch's row; True if its validation CER is the best so far."""
        self.history.append(row)
        improved = row["val_cer"] < self.best_cer
        self.best_cer = min(self.best_cer, row["val_cer"])
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        return improved


@dataclass
class TrainState:
    """The model, optimizer, scheduler, moving average, augmentation RNG and ``Progress``."""

    config: Config
    charset: Charset
    vocabulary: list[str]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    aug_rng: torch.Generator
    ema: torch.optim.swa_utils.AveragedModel | None = None
    progress: Progress = field(default_factory=Progress)

    @property
    def scored(self) -> torch.nn.Module:
        """The weights that are validated and saved as ``best.pt``: the average, if kept."""
        return self.ema.module if self.ema else self.model

    def state_dict(self) -> dict:
        """Everything to continue the run (``last.pt``), as plain data and tensors."""
        p = self.progress
        return {"model": self.model.state_dict(), "config": self.config.to_dict(), "charset": self.charset.chars,
                "epoch": p.epoch, "step": p.step, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "aug_rng": self.aug_rng.get_state(),
                "torch_rng": torch.get_rng_state(), "history": p.history, "best_cer": p.best_cer,
                "bad_epochs": p.bad_epochs, "skipped_steps": p.skipped_steps, "vocabulary": self.vocabulary,
                **({"ema": self.ema.state_dict()} if self.ema else {})}

    def best_dict(self) -> dict:
        """``best.pt``: the validated weights (without training-only heads), config, charset,
        counters and history, but nothing that only resuming needs."""
        best = {k: v for k, v in self.state_dict().items() if k not in RESUME_ONLY}
        best["model"] = inference_weights(self.scored.state_dict())
        return best

    def load_state_dict(self, ckpt: dict, path: str | Path) -> None:
        """Restore a ``state_dict()`` read from ``path``; ``CheckpointError`` if it does not fit."""
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if self.ema and "ema" in ckpt:  # else (averaging turned on at resume) it starts afresh
                self.ema.load_state_dict(ckpt["ema"])
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
            raise CheckpointError(f"{path} does not fit this model (changed model flags?): "
                                  f"{str(e).splitlines()[0][:80]}") from None
        try:
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.aug_rng.set_state(ckpt["aug_rng"])
            torch.set_rng_state(ckpt["torch_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{path}: its training state is damaged ({str(e).splitlines()[0][:80]}); "
                                  "it cannot be resumed") from None
        history = ckpt["history"]
        self.progress = Progress(ckpt["epoch"], ckpt["step"], history,
                                 ckpt.get("best_cer", min((h["val_cer"] for h in history), default=math.inf)),
                                 ckpt.get("bad_epochs", 0), ckpt.get("skipped_steps", 0))


def load_for_resume(path: Path) -> dict:
    """A ``last.pt`` to continue from; ``CheckpointError`` if it is missing or holds no
    training state (a ``best.pt``, say)."""
    if not path.is_file():
        raise CheckpointError(f"--resume: no last.pt in {path.parent}")
    ckpt = load(path)
    missing = set(RESUME_KEYS) - ckpt.keys()
    if missing:
        raise CheckpointError(f"{path} holds no training state ({', '.join(sorted(missing))} "
                              "missing) and cannot be resumed; use it with --pretrained instead")
    wrong = [key for key, kinds in RESUME_TYPES.items() if key in ckpt and not _is(ckpt[key], kinds)]
    if not wrong and not _history_ok(ckpt["history"], ckpt["epoch"]):
        wrong = ["history"]
    if wrong:
        raise CheckpointError(f"{path}: its training state is damaged ({', '.join(wrong)} of the wrong type "
                              "or out of range); it cannot be resumed")
    return ckpt


RESUME_TYPES = {"optimizer": dict, "scheduler": dict, "aug_rng": torch.Tensor, "torch_rng": torch.Tensor,
                "epoch": int, "step": int, "history": list, "best_cer": (int, float), "bad_epochs": int,
                "skipped_steps": int, "ema": dict, "vocabulary": list}


def _is(value, kinds) -> bool:
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    return not isinstance(value, (int, float)) or value >= 0


def _history_ok(history: list, epoch: int) -> bool:
    """One row per epoch done, each with its epoch number and validation CER."""
    return len(history) == epoch and all(
        isinstance(h, dict) and _is(h.get("epoch"), int) and _is(h.get("val_cer"), (int, float)) for h in history)
