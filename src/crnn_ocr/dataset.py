"""Decoded, in-memory training data: images decoded once into uint8 tensors with their
encoded labels, and the training batches cut from them (width-bucketed when trimming).

Inference batching (``inference.batches``) is not here: readers never import this module.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import torch

from .charset import Charset
from .ctc import pack_targets, required_length
from .images import BadImage, content_widths, load_tensor
from .inference import COLUMN_STRIDE, crop_width
from .items import Item, Skipped


def _decode_one(args):
    source, height, width, channels = args
    try:
        # A numpy array, not a tensor: torch sends tensors between processes as shared-memory
        # file descriptors, and tens of thousands of them exceed the open-file limit.
        return load_tensor(source, height, width, channels).numpy(), None
    except BadImage as e:
        return None, str(e)


def decode_images(items: list[Item], height: int, width: int, channels: int,
                  skipped: Skipped, workers: int = 2) -> tuple[torch.Tensor, list[Item]]:
    """Decode and preprocess every item once: (N, C, H, W) uint8 and the items that worked."""
    jobs = [(it.image if it.image is not None else it.path, height, width, channels) for it in items]
    if workers > 1 and len(jobs) > 500:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_decode_one, jobs, chunksize=64))
    else:
        results = [_decode_one(j) for j in jobs]
    tensors, kept = [], []
    for item, (array, error) in zip(items, results):
        if array is None:
            skipped[f"image {error.split(' (')[0]}"] += 1  # the reason without file-specific details
        else:
            tensors.append(torch.from_numpy(array))
            kept.append(item)
    images = torch.stack(tensors) if tensors else torch.empty(0, channels, height, width, dtype=torch.uint8)
    return images, kept


class OCRDataset(torch.utils.data.Dataset):
    """Decoded images (uint8, fixed size) with their encoded labels, all held in memory.

    With ``charset`` and ``max_length`` given, items whose label has unknown characters, is
    empty, or needs more CTC columns than the model has are skipped and counted (training).
    """

    def __init__(self, items: list[Item], height: int, width: int, channels: int,
                 skipped: Skipped, charset: Charset | None = None, max_length: int = 0, workers: int = 2):
        if charset is not None:
            usable = []
            for it in items:
                if not it.text:
                    skipped["empty label"] += 1
                elif charset.unknown(it.text):
                    skipped["label with characters outside the charset"] += 1
                elif max_length and required_length(it.text) > max_length:
                    skipped["label too long for the model's output"] += 1
                else:
                    usable.append(it)
            items = usable
        self.images, self.items = decode_images(items, height, width, channels, skipped, workers)
        self.targets = [charset.encode(it.text) for it in self.items] if charset is not None else None
        # The columns each image needs: its content, and (training) room for CTC to emit its label.
        self.widths = content_widths(self.images)
        if charset is not None and len(self.items):
            room = torch.tensor([COLUMN_STRIDE * required_length(it.text) for it in self.items])
            self.widths = torch.maximum(self.widths, room)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.images[i], (self.targets[i] if self.targets is not None else []), i

    def batch(self, index: list[int], trim: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training batch of items ``index``: uint8 images, concatenated targets, label
        lengths; with ``trim``, the images cut to ``crop_width`` of the widest one."""
        images, targets, lengths, _ = collate([self[i] for i in index])
        if trim:
            images = images[..., : crop_width(self.widths[index].max(), images.shape[3])]
        return images, targets, lengths


def width_bucketed(order: list[int], widths: torch.Tensor, batch_size: int, seed: int, chunk: int = 32) -> list[int]:
    """A training order in which every batch holds images of similar width: each run of
    ``chunk`` batches of the shuffled ``order`` is sorted by width and cut into batches, and
    the batches are shuffled (seeded, so a resumed run sees the same order)."""
    groups = []
    for start in range(0, len(order), batch_size * chunk):
        part = sorted(order[start : start + batch_size * chunk], key=lambda i: int(widths[i]))
        groups += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    last = groups.pop() if groups and len(groups[-1]) < batch_size else []  # a short batch stays last
    g = torch.Generator().manual_seed(seed)
    return [i for k in torch.randperm(len(groups), generator=g).tolist() for i in groups[k]] + last


def collate(batch):
    """Stack images; concatenate targets the way ``nn.CTCLoss`` wants them."""
    images, targets, index = zip(*batch)
    flat, lengths = pack_targets(targets)
    return torch.stack(images), flat, lengths, torch.tensor(index)
