"""The training loop: CTC loss, AdamW, gradient clipping, warm-up + cosine learning rate,
a validation pass and a report after every epoch, checkpoints, resume and early stopping.

``train(config, out_dir)`` is the whole of ``crnn-ocr train``. The run folder receives
``best.pt`` (lowest validation CER), ``last.pt``, ``history.csv``, ``loss.png`` and
``samples/epoch_NNN.png``. Ctrl-C or SIGTERM stops at the next step and saves ``last.pt``
with everything needed to continue exactly where the run stopped (``--resume``).
"""
from __future__ import annotations

import csv
import math
import signal
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import checkpoint, plots
from .charset import Charset, ctc_required_length
from .config import Config
from .data import DataError, OCRDataset, Skipped, collate, training_items
from .evaluate import recognize
from .images import augment_batch
from .metrics import cer, word_accuracy


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean CTC loss; ``zero_infinity`` turns impossible alignments into zero loss instead of
    inf (the report's cure for NaN losses)."""
    inputs = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
    return torch.nn.functional.ctc_loss(log_probs.float(), targets, inputs, lengths, blank=0,
                                        reduction="mean", zero_infinity=True)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def train(config: Config, out_dir: str | Path, resume: bool = False, log=print) -> dict:
    """Train a CRNN as ``config`` says; returns the best epoch's validation metrics."""
    t_cfg, d = config.train, config.data
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)
    torch.manual_seed(t_cfg.seed)

    state = None
    if resume:
        if not (out / "last.pt").is_file():
            raise DataError(f"--resume: no last.pt in {out}")
        state = checkpoint.load(out / "last.pt")
        log(f"resuming from {out / 'last.pt'} (epoch {state['epoch']}, step {state['step']})")

    skipped = Skipped()
    log("loading data: " + (d.path or f"{d.synthetic_train} + {d.synthetic_val} synthetic captchas"))
    train_items, val_items = training_items(d, t_cfg.seed, skipped)
    charset = Charset(state["charset"]) if state else Charset.from_texts(it.text for it in train_items)
    imagenet = config.model.pretrained == "imagenet" and not state
    columns = checkpoint.build_model(config, charset).columns
    too_long = sum(ctc_required_length(it.text) > columns for it in train_items)
    if too_long > 0.01 * len(train_items):
        checkpoint.build_model(config, charset, max(ctc_required_length(it.text) for it in train_items))
    train_ds = OCRDataset(train_items, d.height, d.width, d.channels, skipped, charset, columns)
    val_ds = OCRDataset(val_items, d.height, d.width, d.channels, skipped)
    val_targets = [charset.encode("".join(c for c in it.text if not charset.unknown(c))) for it in val_ds.items]
    val_gold = [it.text for it in val_ds.items]
    log(f"{len(train_ds)} training and {len(val_ds)} validation images, {len(charset) - 1} characters"
        + (f"; skipped: {skipped}" if skipped else ""))
    if not len(train_ds):
        raise DataError("no usable training images left")

    model = checkpoint.build_model(config, charset, imagenet=imagenet)
    device = torch.device("cpu")
    if config.model.pretrained not in ("", "imagenet") and not state:
        copied, total = checkpoint.load_pretrained(model, config.model.pretrained)
        log(f"pretrained: copied {copied} of {total} tensors from {config.model.pretrained}")
    log(f"model: {config.model.backbone} backbone, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters, {model.columns} output columns")

    optimizer = torch.optim.AdamW(model.parameters(), lr=t_cfg.lr, weight_decay=t_cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_ds) / t_cfg.batch_size)
    total_steps = steps_per_epoch * t_cfg.epochs
    warmup = max(1, round(t_cfg.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup, total_steps, t_cfg.min_lr_ratio))
    aug_rng = torch.Generator().manual_seed(t_cfg.seed + 1)

    epoch, step, history, best_cer, bad_epochs, skipped_steps = 0, 0, [], math.inf, 0, 0
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        aug_rng.set_state(state["aug_rng"])
        torch.set_rng_state(state["torch_rng"])
        epoch, step, history = state["epoch"], state["step"], state["history"]
        best_cer, bad_epochs, skipped_steps = state["best_cer"], state["bad_epochs"], state["skipped_steps"]

    def snapshot() -> dict:
        return {"model": model.state_dict(), "config": config.to_dict(), "charset": charset.chars,
                "epoch": epoch, "step": step, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "aug_rng": aug_rng.get_state(),
                "torch_rng": torch.get_rng_state(), "history": history, "best_cer": best_cer,
                "bad_epochs": bad_epochs, "skipped_steps": skipped_steps}

    (out / "samples").mkdir(exist_ok=True)
    with StopRequest() as stop:
        while epoch < t_cfg.epochs:
            # The order of an epoch depends only on (seed, epoch): a resumed run skips the
            # batches it already did and then sees exactly what an uninterrupted run would.
            order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(t_cfg.seed * 1000 + epoch))
            first = step - epoch * steps_per_epoch
            model.train()
            t0, seen, loss_sum, n_loss = time.time(), 0, 0.0, 0
            bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{t_cfg.epochs}",
                       leave=False, mininterval=1.0, dynamic_ncols=True)
            for b in bar:
                if stop.requested:
                    break
                images, targets, lengths, _ = collate([train_ds[i] for i in order[b * t_cfg.batch_size:(b + 1) * t_cfg.batch_size].tolist()])
                x = images.float().div_(255)
                if d.augment:
                    x = augment_batch(x, aug_rng)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=t_cfg.amp):
                    log_probs = model(x)
                loss = ctc_loss(log_probs, targets, lengths)
                optimizer.zero_grad(set_to_none=True)
                ok = torch.isfinite(loss).item()
                if ok:
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t_cfg.grad_clip)
                    ok = torch.isfinite(norm).item()
                if ok:
                    optimizer.step()
                    loss_sum += loss.item() * len(images)
                    n_loss += len(images)
                else:
                    skipped_steps += 1
                    log(f"step {step}: non-finite loss or gradient, step skipped ({skipped_steps} so far)")
                scheduler.step()
                step += 1
                seen += len(images)
                bar.set_postfix(loss=f"{loss_sum / max(1, n_loss):.3f}", img_s=f"{seen / (time.time() - t0):.0f}")
            bar.close()
            if stop.requested:
                checkpoint.save(snapshot(), out / "last.pt")
                log(f"interrupted: saved {out / 'last.pt'} at epoch {epoch}, step {step}; continue with --resume")
                return {"interrupted": True, "epoch": epoch, "step": step}
            train_time = time.time() - t0

            pred, _, val_loss = recognize(model, val_ds.images, charset, targets=val_targets)
            epoch += 1
            row = {"epoch": epoch, "train_loss": loss_sum / max(1, n_loss), "val_loss": val_loss,
                   "val_word_accuracy": word_accuracy(val_gold, pred), "val_cer": cer(val_gold, pred),
                   "lr": optimizer.param_groups[0]["lr"], "img_per_s": seen / max(1e-9, train_time),
                   "seconds": time.time() - t0}
            history.append(row)
            improved = row["val_cer"] < best_cer
            best_cer = min(best_cer, row["val_cer"])
            bad_epochs = 0 if improved else bad_epochs + 1
            log(f"epoch {epoch:3d}/{t_cfg.epochs}  train loss {row['train_loss']:.4f}  val loss {val_loss:.4f}  "
                f"word acc {100 * row['val_word_accuracy']:6.2f}%  CER {100 * row['val_cer']:6.2f}%  "
                f"lr {row['lr']:.2e}  {row['img_per_s']:.0f} img/s  {row['seconds']:.1f}s" + ("  *best*" if improved else ""))
            checkpoint.save(snapshot(), out / "last.pt")
            if improved:
                best = snapshot()
                for key in ("optimizer", "scheduler", "aug_rng", "torch_rng"):
                    del best[key]  # best.pt is for using the model, last.pt for resuming
                checkpoint.save(best, out / "best.pt")
            write_history(history, out)
            n = min(8, len(val_ds))
            plots.sample_grid(val_ds.images[:n], val_gold[:n], pred[:n], out / "samples" / f"epoch_{epoch:03d}.png",
                              title=f"epoch {epoch}: gold and prediction (errors in red)")
            if t_cfg.patience and bad_epochs >= t_cfg.patience:
                log(f"early stop: no better validation CER for {bad_epochs} epochs")
                break
    best_row = min(history, key=lambda h: h["val_cer"])
    log(f"best epoch {best_row['epoch']}: word accuracy {100 * best_row['val_word_accuracy']:.2f}%, "
        f"CER {100 * best_row['val_cer']:.2f}%; checkpoint {out / 'best.pt'}")
    if skipped_steps:
        log(f"{skipped_steps} steps were skipped for non-finite loss or gradients")
    return best_row


def write_history(history: list[dict], out: Path) -> None:
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    plots.loss_curve(history, out / "loss.png")
