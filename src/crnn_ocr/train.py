"""The training loop: CTC loss, AdamW, gradient clipping, warm-up + cosine learning rate,
a validation pass and a report after every epoch, checkpoints, resume and early stopping.

``train(config, out_dir)`` is the whole of ``crnn-ocr train``. The run folder receives
``best.pt`` (lowest validation CER), ``last.pt``, ``history.csv``, ``loss.png`` and
``samples/epoch_NNN.png``. Ctrl-C or SIGTERM stops at the next step and saves ``last.pt``
with everything needed to continue exactly where the run stopped (``--resume``).

Started by ``torchrun``, the same function trains with DistributedDataParallel: each process
takes its share of every epoch (``DistributedSampler``), validation predictions are gathered
so every rank computes the same metrics, and only rank 0 writes files.
"""
from __future__ import annotations

import csv
import math
import os
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import checkpoint, plots
from .charset import Charset, ctc_required_length
from .config import Config
from .data import DataError, OCRDataset, Skipped, training_items, width_bucketed
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


def select_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; under torchrun each rank takes its GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: MPS is not available")
    if name not in ("cpu", "mps"):
        raise ValueError(f"unknown device {name!r} (auto, cpu, cuda or mps)")
    return torch.device(name)


def any_rank(flag: bool, world: int) -> bool:
    """True if ``flag`` is true on any process (every rank must take the same branch)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t)
    return bool(t.item())


def validate(model, val_ds: OCRDataset, charset: Charset, targets, rank: int, world: int,
             trim: bool = False) -> tuple[list[str], float]:
    """Predictions for every validation image and the mean CTC loss, identical on every
    rank: each process reads its share, then the shares are gathered."""
    index = list(range(rank, len(val_ds), world))
    pred, _, loss = recognize(model, val_ds.images[index], charset, targets=[targets[i] for i in index],
                              trim=trim)
    if world == 1:
        return pred, loss
    shares = [None] * world
    dist.all_gather_object(shares, (index, pred, loss * len(index)))
    texts = [""] * len(val_ds)
    for idx, p, _ in shares:
        for i, t in zip(idx, p):
            texts[i] = t
    return texts, sum(s[2] for s in shares) / max(1, len(val_ds))


def train(config: Config, out_dir: str | Path, resume: bool = False, log=print) -> dict:
    """Train a CRNN as ``config`` says; returns the best epoch's validation metrics."""
    out = Path(out_dir)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = select_device(config.train.device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    try:
        return _train(config, out, resume, log if rank == 0 else (lambda *a, **k: None), device, rank, world)
    finally:
        if world > 1:
            dist.destroy_process_group()


def _train(config: Config, out: Path, resume: bool, log, device: torch.device, rank: int, world: int) -> dict:
    t_cfg, d = config.train, config.data
    main_process = rank == 0
    out.mkdir(parents=True, exist_ok=True)
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)
    torch.manual_seed(t_cfg.seed)

    state = None
    if resume:
        if not (out / "last.pt").is_file():
            raise DataError(f"--resume: no last.pt in {out}")
        state = checkpoint.load(out / "last.pt")
        missing = {"optimizer", "scheduler", "aug_rng", "torch_rng", "epoch", "step", "history"} - state.keys()
        if missing:
            raise checkpoint.CheckpointError(f"{out / 'last.pt'} holds no training state ({', '.join(sorted(missing))} "
                                             "missing) and cannot be resumed; use it with --pretrained instead")
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
    vocabulary = sorted({it.text for it in train_ds.items})  # for lexicon decoding later
    log(f"{len(train_ds)} training and {len(val_ds)} validation images, {len(charset) - 1} characters"
        + (f"; skipped: {skipped}" if skipped else ""))
    if not len(train_ds):
        raise DataError("no usable training images left")
    if not len(val_ds):
        raise DataError("no usable validation images left")

    model = checkpoint.build_model(config, charset, imagenet=imagenet, training=True)
    if config.model.pretrained not in ("", "imagenet") and not state:
        copied, total, rows = checkpoint.load_pretrained(model, config.model.pretrained, charset)
        log(f"pretrained: copied {copied} of {total} tensors from {config.model.pretrained}, "
            f"and {rows} of {len(charset)} classifier rows (blank and known characters)")
    log(f"model: {config.model.backbone} backbone, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters, {model.columns} output columns; device {device}" + (f", {world} processes" if world > 1 else ""))
    # channels_last: oneDNN's convolutions run faster on NHWC (1.2x with bf16 on 2 CPU cores).
    memory_format = torch.channels_last if t_cfg.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    ddp_model = DistributedDataParallel(model) if world > 1 else model
    # An exponential moving average of the weights (and BatchNorm statistics): it smooths out
    # the noise of the last steps, so it usually validates better than the weights themselves.
    # Validation, best.pt and early stopping use it; last.pt keeps both for resuming.
    ema = None
    if t_cfg.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(t_cfg.ema), use_buffers=True)
    scored = ema.module if ema else model  # the weights that are validated and saved as best.pt

    optimizer = torch.optim.AdamW(model.parameters(), lr=t_cfg.lr, weight_decay=t_cfg.weight_decay)
    # One sampler serves both cases: with one process it is a seeded shuffle per epoch.
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=t_cfg.seed)
    steps_per_epoch = math.ceil(len(sampler) / t_cfg.batch_size)
    total_steps = steps_per_epoch * t_cfg.epochs
    warmup = max(1, round(t_cfg.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, warmup, total_steps, t_cfg.min_lr_ratio))
    # bf16 where the hardware has it (CPUs, recent GPUs); fp16 needs a loss scaler.
    amp_dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler(enabled=t_cfg.amp and amp_dtype == torch.float16)
    aug_rng = torch.Generator().manual_seed(t_cfg.seed + 1 + rank)
    pin = device.type == "cuda"

    epoch, step, history, best_cer, bad_epochs, skipped_steps = 0, 0, [], math.inf, 0, 0
    if state:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if ema and "ema" in state:  # else (averaging turned on at resume) it starts afresh
                ema.load_state_dict(state["ema"])
        except (RuntimeError, ValueError) as e:
            raise checkpoint.CheckpointError(f"{out / 'last.pt'} does not fit this model (changed model flags?): "
                                             f"{str(e).splitlines()[0][:80]}") from None
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
                "bad_epochs": bad_epochs, "skipped_steps": skipped_steps, "vocabulary": vocabulary,
                **({"ema": ema.state_dict()} if ema else {})}

    writer = None
    if t_cfg.tensorboard and main_process:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"))
    (out / "samples").mkdir(exist_ok=True)
    with StopRequest() as stop:
        while epoch < t_cfg.epochs:
            # The order of an epoch depends only on (seed, epoch): a resumed run skips the
            # batches it already did and then sees exactly what an uninterrupted run would.
            sampler.set_epoch(epoch)
            order = list(sampler)
            if d.trim_padding:
                order = width_bucketed(order, train_ds.widths, t_cfg.batch_size, t_cfg.seed * 100_003 + epoch)
            first = step - epoch * steps_per_epoch
            ddp_model.train()
            t0, seen, loss_sum, n_loss = time.time(), 0, 0.0, 0
            bar = tqdm(range(first, steps_per_epoch), desc=f"epoch {epoch + 1}/{t_cfg.epochs}", leave=False,
                       mininterval=1.0, dynamic_ncols=True,
                       disable=None if main_process else True)  # None: no bar when not a terminal
            interrupted = False
            for b in bar:
                if any_rank(stop.requested, world):
                    interrupted = True
                    break
                images, targets, lengths = train_ds.batch(order[b * t_cfg.batch_size:(b + 1) * t_cfg.batch_size],
                                                          d.trim_padding)
                x = images.float().div_(255)
                if d.augment:
                    x = augment_batch(x, aug_rng, d.elastic)
                x = x.pin_memory().to(device, non_blocking=True) if pin else x.to(device)
                x = x.contiguous(memory_format=memory_format)
                shortcut = config.model.ctc_shortcut
                with torch.autocast(device.type, dtype=amp_dtype, enabled=t_cfg.amp):
                    outputs = ddp_model(x, shortcut=True) if shortcut else (ddp_model(x),)
                # The shortcut head's CTC loss trains the CNN directly (training only).
                losses = [ctc_loss(lp.cpu() if device.type == "mps" else lp, targets.to(lp.device),
                                   lengths.to(lp.device)) for lp in outputs]
                loss = losses[0] + shortcut * losses[1] if shortcut else losses[0]
                optimizer.zero_grad(set_to_none=True)
                ok = not any_rank(not torch.isfinite(loss).item(), world)
                if ok:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t_cfg.grad_clip)
                    ok = torch.isfinite(norm).item()  # gradients are already averaged: same on every rank
                    if ok:
                        scaler.step(optimizer)
                        if ema:
                            ema.update_parameters(model)
                    scaler.update()
                if ok:
                    loss_sum += loss.item() * len(images)
                    n_loss += len(images)
                else:
                    skipped_steps += 1
                    log(f"step {step}: non-finite loss or gradient, step skipped ({skipped_steps} so far)")
                scheduler.step()
                step += 1
                seen += len(images) * world
                bar.set_postfix(loss=f"{loss_sum / max(1, n_loss):.3f}", img_s=f"{seen / (time.time() - t0):.0f}")
            bar.close()
            if interrupted:
                if main_process:
                    checkpoint.save(snapshot(), out / "last.pt")
                log(f"interrupted: saved {out / 'last.pt'} at epoch {epoch}, step {step}; continue with --resume")
                return {"interrupted": True, "epoch": epoch, "step": step}
            train_time = time.time() - t0

            pred, val_loss = validate(scored, val_ds, charset, val_targets, rank, world, d.trim_padding)
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
            if main_process:
                checkpoint.save(snapshot(), out / "last.pt")
                if improved:
                    best = snapshot()
                    for key in ("optimizer", "scheduler", "aug_rng", "torch_rng", "ema"):
                        best.pop(key, None)  # best.pt is for using the model, last.pt for resuming
                    best["model"] = checkpoint.inference_weights(scored.state_dict())
                    checkpoint.save(best, out / "best.pt")
                write_history(history, out)
                n = min(8, len(val_ds))
                sample_png = out / "samples" / f"epoch_{epoch:03d}.png"
                plots.sample_grid(val_ds.images[:n], val_gold[:n], pred[:n], sample_png,
                                  title=f"epoch {epoch}: gold and prediction (errors in red)")
                if writer:
                    log_tensorboard(writer, row, sample_png)
            if t_cfg.patience and bad_epochs >= t_cfg.patience:
                log(f"early stop: no better validation CER for {bad_epochs} epochs")
                break
    if writer:
        writer.close()
    best_row = min(history, key=lambda h: h["val_cer"])
    log(f"best epoch {best_row['epoch']}: word accuracy {100 * best_row['val_word_accuracy']:.2f}%, "
        f"CER {100 * best_row['val_cer']:.2f}%; checkpoint {out / 'best.pt'}")
    if skipped_steps:
        log(f"{skipped_steps} steps were skipped for non-finite loss or gradients")
    if skipped:
        log(f"skipped {sum(skipped.values())} items: {skipped}")
    return best_row


def log_tensorboard(writer, row: dict, sample_png: Path) -> None:
    import numpy as np
    from PIL import Image

    for key, value in row.items():
        if key != "epoch":
            writer.add_scalar(key, value, row["epoch"])
    with Image.open(sample_png) as im:
        writer.add_image("samples", np.asarray(im.convert("RGB")), row["epoch"], dataformats="HWC")
    writer.flush()


def write_history(history: list[dict], out: Path) -> None:
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    plots.loss_curve(history, out / "loss.png")
