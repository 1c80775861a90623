"""The training loop: CTC loss, AdamW, gradient clipping, warm-up + cosine learning rate,
a validation pass and a report after every epoch, checkpoints, resume and early stopping.

``train(config, out_dir)`` is the whole of ``crnn-ocr train``, in phases as in torchvision's
reference scripts: ``set_up`` (data, model, optimizer, the resumed ``TrainState``),
``train_one_epoch``, and ``end_of_epoch`` (validate, log, save). The run folder receives
``best.pt`` (lowest validation CER), ``last.pt``, ``history.csv``, ``loss.png`` and
``samples/epoch_NNN.png``. Ctrl-C or SIGTERM stops at the next step and saves ``last.pt``
with everything needed to continue exactly where the run stopped (``--resume``).

Under ``torchrun`` it trains with DistributedDataParallel: each process takes its share of every
epoch, validation predictions are gathered for every rank, and only rank 0 writes files.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from crnn_ocr.config.schema import Config
from crnn_ocr.data.augment import augment_batch
from crnn_ocr.data.datasets import width_bucketed
from crnn_ocr.decoding.ctc import ctc_loss
from crnn_ocr.evaluation import plots
from crnn_ocr.evaluation.metrics import cer, word_accuracy
from crnn_ocr.model import checkpoint, pretrained
from crnn_ocr.reading.infer import infer, take
from crnn_ocr.training import run_folder
from crnn_ocr.training.data import TrainingData, load_training_data
from crnn_ocr.training.report import epoch_line, log_tensorboard, open_tensorboard, write_history
from crnn_ocr.training.state import Progress, TrainState, load_for_resume, new_state
from crnn_ocr.utils.runtime import StopRequest, any_rank, autocast_dtype, select_device, use_threads, world_size

PROGRESS_EVERY = 120  # seconds between progress lines when there is no progress bar (output to a file)


def validate(model, data: TrainingData, rank: int, world: int, trim: bool = False) -> tuple[list[str], float]:
    """Predictions for every validation image and the mean CTC loss, identical on every
    rank: each process reads its share, then the shares are gathered."""
    index = list(range(rank, len(data.val), world))
    read = infer(model, take(data.val.images, index), data.charset, trim=trim, targets=take(data.val_targets, index))
    if world == 1:
        return read.texts, read.loss
    shares = [None] * world
    dist.all_gather_object(shares, (index, read.texts, read.loss * len(index)))
    texts = [""] * len(data.val)
    for idx, p, _ in shares:
        for i, t in zip(idx, p):
            texts[i] = t
    return texts, sum(s[2] for s in shares) / max(1, len(data.val))


def train(config: Config, out_dir: str | Path, resume: bool = False, log=print, overwrite: bool = False) -> dict:
    """Train a CRNN as ``config`` says; returns the best epoch's validation metrics (or, when
    interrupted, ``{"interrupted": True, "epoch", "step"}``).

    A folder that holds a run is refused unless ``resume`` (continue it) or ``overwrite``
    (remove it first); a folder another live training is using is refused (``run_folder``)."""
    config.validate()
    world = world_size()
    device = select_device(config.train.device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    try:
        with run_folder.claim(Path(out_dir), resume, overwrite, main_process=rank == 0):
            loop = set_up(config, Path(out_dir), resume, log if rank == 0 else (lambda *a, **k: None), device, rank,
                          world)
            return run(loop)
    finally:
        if world > 1:
            dist.destroy_process_group()


@dataclass
class Loop:
    """What the phases of a run share."""

    config: Config
    out: Path
    log: object
    device: torch.device
    rank: int
    world: int
    data: TrainingData
    state: TrainState
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    sampler: DistributedSampler
    steps_per_epoch: int
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # None: float32
    memory_format: torch.memory_format
    writer: object = None

    @property
    def main_process(self) -> bool:
        return self.rank == 0


def check_resume_groups(ckpt: dict, cnn_lr: float, path: Path) -> None:
    """Refuse a resume with another ``cnn_lr``: the optimizer's groups and rates come back from
    the checkpoint, so a new value would be ignored, or not fit."""
    saved = ((ckpt.get("config") or {}).get("train") or {}).get("cnn_lr", 1.0)
    if saved != cnn_lr:
        raise checkpoint.CheckpointError(f"{path} was trained with cnn_lr {saved}; resume it with --cnn-lr {saved}")


def set_up(config: Config, out: Path, resume: bool, log, device: torch.device, rank: int, world: int) -> Loop:
    """Data, model, optimizer and schedule of a run; a resumed run's ``TrainState`` restored."""
    t = config.train
    out.mkdir(parents=True, exist_ok=True)
    use_threads(t.threads)  # 0: the cores the machine can give, not every core (utils.runtime)
    torch.manual_seed(t.seed)
    ckpt = load_for_resume(out / "last.pt") if resume else None
    if ckpt:
        log(f"resuming from {out / 'last.pt'} (epoch {ckpt['epoch']}, step {ckpt['step']})")
        check_resume_groups(ckpt, t.cnn_lr, out / "last.pt")
    else:
        pretrained.check_start(config)  # a misspelt start fails now, not after the data load
    data, model = load_training_data(config, ckpt["charset"] if ckpt else None, log)
    if not ckpt:
        pretrained.start_from_pretrained(model, config, data.charset, log)
    log(f"model: {config.model.backbone} backbone, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters, {model.columns} output columns; device {device}" + (f", {world} processes" if world > 1 else ""))
    # channels_last: oneDNN's convolutions run faster on NHWC (1.2x with bf16 on 2 CPU cores).
    memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    net = DistributedDataParallel(model) if world > 1 else model
    # One sampler serves both cases: with one process it is a seeded shuffle per epoch.
    sampler = DistributedSampler(data.train, num_replicas=world, rank=rank, shuffle=True, seed=t.seed)
    steps_per_epoch = math.ceil(len(sampler) / t.batch_size)
    state = new_state(config, data, model, steps_per_epoch, rank)
    if ckpt:
        state.load_state_dict(ckpt, out / "last.pt")
        if rank == 0:
            run_folder.recover_best(out, state, log)
    amp_dtype = autocast_dtype(device, t.amp)  # None: float32
    if t.amp and amp_dtype is None:
        log("mixed precision off: this CPU has no native bfloat16 (emulated, it is several times slower)")
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)  # fp16 needs a loss scaler
    writer = open_tensorboard(out) if t.tensorboard and rank == 0 else None
    (out / "samples").mkdir(exist_ok=True)
    return Loop(config, out, log, device, rank, world, data, state, net, sampler, steps_per_epoch, scaler,
                amp_dtype, memory_format, writer)


def run(loop: Loop) -> dict:
    """Epochs until the last, an early stop or a stop request; returns the best epoch's row."""
    p, t = loop.state.progress, loop.config.train
    with StopRequest() as stop:
        while p.epoch < t.epochs:
            stats = train_one_epoch(loop, stop)
            if stats.interrupted:
                if loop.main_process:
                    checkpoint.save(loop.state.state_dict(), loop.out / "last.pt")
                loop.log(f"interrupted: saved {loop.out / 'last.pt'} at epoch {p.epoch}, step {p.step}")
                return {"interrupted": True, "epoch": p.epoch, "step": p.step}
            end_of_epoch(loop, stats)
            if t.patience and p.bad_epochs >= t.patience:
                loop.log(f"early stop: no better validation CER for {p.bad_epochs} epochs")
                break
    return finish(loop)


@dataclass
class EpochStats:
    """What one pass over the training data measured."""

    started: float
    seen: int = 0
    loss_sum: float = 0.0
    n_loss: int = 0
    interrupted: bool = False
    reported: float = 0.0  # when the last progress line was printed (time.time())


def train_one_epoch(loop: Loop, stop: StopRequest) -> EpochStats:
    """The steps of one epoch (the rest of it, when resumed mid-way)."""
    p, t, d = loop.state.progress, loop.config.train, loop.config.data
    # The order of an epoch depends only on (seed, epoch): a resumed run skips the batches it
    # already did and then sees exactly what an uninterrupted run would.
    loop.sampler.set_epoch(p.epoch)
    order = list(loop.sampler)
    if d.trim_padding or d.any_width:
        order = width_bucketed(order, loop.data.train.widths, t.batch_size, t.seed * 100_003 + p.epoch)
    first = p.step - p.epoch * loop.steps_per_epoch
    loop.net.train()
    stats = EpochStats(now := time.time(), reported=now)
    steps = range(first, loop.steps_per_epoch)
    bar = tqdm(steps, desc=f"epoch {p.epoch + 1}/{t.epochs}", leave=False,
               mininterval=1.0, dynamic_ncols=True,
               disable=None if loop.main_process else True)  # None: no bar when not a terminal
    batches = loop.data.train.batches([order[b * t.batch_size:(b + 1) * t.batch_size] for b in steps],
                                      d.trim_padding)
    for _, (images, targets, lengths) in zip(bar, batches):
        if any_rank(stop.requested, loop.world):
            stats.interrupted = True
            break
        loss = train_step(loop, images, targets, lengths)
        if loss is not None:
            stats.loss_sum += loss * len(images)
            stats.n_loss += len(images)
        else:
            p.skipped_steps += 1
            loop.log(f"step {p.step}: non-finite loss or gradient, step skipped ({p.skipped_steps} so far)")
        loop.state.scheduler.step()
        p.step += 1
        stats.seen += len(images) * loop.world
        loss_s, img_s = f"{stats.loss_sum / max(1, stats.n_loss):.3f}", stats.seen / (time.time() - stats.started)
        bar.set_postfix(loss=loss_s, img_s=f"{img_s:.0f}")
        if bar.disable and loop.main_process and time.time() - stats.reported >= PROGRESS_EVERY:
            stats.reported = time.time()  # no bar (a log file): a plain line now and then instead
            loop.log(f"  epoch {p.epoch + 1}/{t.epochs} step {p.step - p.epoch * loop.steps_per_epoch}/"
                     f"{loop.steps_per_epoch}  train loss {loss_s}  {img_s:.0f} img/s")
    bar.close()
    return stats


def train_step(loop: Loop, images: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> float | None:
    """Augment, forward, CTC loss, backward, clip, step; the loss, or None if the step was
    skipped for a non-finite loss or gradient."""
    d, t, s, device = loop.config.data, loop.config.train, loop.state, loop.device
    x = images.float().div_(255)
    if d.augment:
        x = augment_batch(x, s.aug_rng, d.elastic, d.degrade, d.erase)
    x = x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x.to(device)
    x = x.contiguous(memory_format=loop.memory_format)
    shortcut = loop.config.model.ctc_shortcut
    with torch.autocast(device.type, dtype=loop.amp_dtype or torch.bfloat16, enabled=loop.amp_dtype is not None):
        outputs = loop.net(x, shortcut=True) if shortcut else (loop.net(x),)
    # The shortcut head's CTC loss trains the CNN directly (training only).
    losses = [ctc_loss(lp.cpu() if device.type == "mps" else lp, targets.to(lp.device), lengths.to(lp.device))
              for lp in outputs]
    loss = losses[0] + shortcut * losses[1] if shortcut else losses[0]
    s.optimizer.zero_grad(set_to_none=True)
    ok = not any_rank(not torch.isfinite(loss).item(), loop.world)
    if ok:
        loop.scaler.scale(loss).backward()
        loop.scaler.unscale_(s.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(s.model.parameters(), t.grad_clip)
        ok = torch.isfinite(norm).item()  # gradients are already averaged: same on every rank
        if ok:
            loop.scaler.step(s.optimizer)
            if s.ema:
                s.ema.update_parameters(s.model)
        loop.scaler.update()
    return loss.item() if ok else None


def end_of_epoch(loop: Loop, stats: EpochStats) -> None:
    """Validate, record and print the epoch; save ``last.pt`` (and ``best.pt`` if it is the
    best so far), the history and the sample grid."""
    train_time = time.time() - stats.started
    p, data, state = loop.state.progress, loop.data, loop.state
    pred, val_loss = validate(state.scored, data, loop.rank, loop.world, loop.config.data.trim_padding)
    p.epoch += 1
    row = {"epoch": p.epoch, "train_loss": stats.loss_sum / max(1, stats.n_loss), "val_loss": val_loss,
           "val_word_accuracy": word_accuracy(data.val_gold, pred), "val_cer": cer(data.val_gold, pred),
           "lr": state.optimizer.param_groups[0]["lr"], "img_per_s": stats.seen / max(1e-9, train_time),
           "seconds": time.time() - stats.started}
    improved = p.record(row)
    loop.log(epoch_line(row, loop.config.train.epochs, improved))
    if not loop.main_process:
        return
    # best.pt first: last.pt records the best CER, so a crash between the two saves must not
    # leave a last.pt that claims a best.pt which was never written.
    if improved or not (loop.out / "best.pt").exists():
        checkpoint.save(state.best_dict(), loop.out / "best.pt")
    checkpoint.save(state.state_dict(), loop.out / "last.pt")
    write_history(p.history, loop.out)
    n = min(8, len(data.val))
    sample_png = loop.out / "samples" / f"epoch_{p.epoch:03d}.png"
    plots.sample_grid(data.val.images[:n], data.val_gold[:n], pred[:n], sample_png,
                      title=f"epoch {p.epoch}: gold and prediction (errors in red)")
    if loop.writer:
        log_tensorboard(loop.writer, row, sample_png)


def finish(loop: Loop) -> dict:
    """Close the logs and print the summary; the best epoch's row."""
    p: Progress = loop.state.progress
    if loop.writer:
        loop.writer.close()
    best_row = min(p.history, key=lambda h: h["val_cer"])
    loop.log(f"best epoch {best_row['epoch']}: word accuracy {100 * best_row['val_word_accuracy']:.2f}%, "
             f"CER {100 * best_row['val_cer']:.2f}%; checkpoint {loop.out / 'best.pt'}")
    if p.skipped_steps:
        loop.log(f"{p.skipped_steps} steps were skipped for non-finite loss or gradients")
    if loop.data.skipped:
        loop.log(f"skipped {sum(loop.data.skipped.values())} items: {loop.data.skipped}")
    return best_row
