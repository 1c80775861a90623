"""Decoded, in-memory training data: images decoded once into uint8 tensors with their
encoded labels, and the training batches cut from them (width-bucketed when trimming);
or, for synthetic words, images rendered on the fly (``RenderedDataset``).

A fixed canvas (``[data] width`` > 0) gives one tensor (N, C, H, W); any-width mode
(``width = 0``) a list of (C, H, W) tensors, each as wide as its image (compact: no padding
to the widest), padded to the widest of a batch only when the batch is made.

Inference batching (``inference.batches``) is not here: readers never import this module.
"""
from __future__ import annotations

import signal
import warnings
from array import array
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import torch

from crnn_ocr.config.sections import MAX_WIDTH
from crnn_ocr.data.items import Item, Skipped
from crnn_ocr.decoding.ctc import pack_targets, required_length
from crnn_ocr.model.charset import Charset
from crnn_ocr.reading.images import BadImage, ImageTooWide, content_widths, load_tensor
from crnn_ocr.reading.infer import COLUMN_STRIDE, Images, crop_width

RENDER_WORKERS = 1  # loader processes that render on-the-fly training images (RenderedDataset)


def _decode_one(args):
    source, name, height, width, channels, max_width, levels, crop = args
    # Warnings are recorded here and re-issued by the main process, which counts the images
    # scaled down to max_width (a worker process's warnings would be lost to it).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # A numpy array, not a tensor: torch sends tensors between processes as shared-memory
            # file descriptors, and tens of thousands of them exceed the open-file limit.
            array, error = load_tensor(source, height, width, channels, max_width, name, levels, crop).numpy(), None
        except BadImage as e:
            array, error = None, str(e)
    return array, error, [(w.category, str(w.message)) for w in caught]


def decode_images(items: list[Item], height: int, width: int, channels: int, skipped: Skipped,
                  workers: int = 2, max_width: int = MAX_WIDTH, scaled_down: list[str] | None = None,
                  levels: bool = False, crop: bool = False) -> tuple[Images, list[Item]]:
    """Decode and preprocess every item once: (N, C, H, W) uint8 (with ``width`` 0, a list of
    (C, H, W) of their own widths) and the items that worked. ``scaled_down`` receives the
    names of images wider than ``max_width``, scaled down to it (each also warned about).
    ``levels``, ``crop``: ``images.ink_view``'s."""
    jobs = [(it.image if it.image is not None else it.path, it.path, height, width, channels, max_width, levels, crop)
            for it in items]
    if workers > 1 and len(jobs) > 500:
        # Ctrl-C reaches the workers too: they leave it to the main process, which stops quietly.
        with ProcessPoolExecutor(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
            results = list(pool.map(_decode_one, jobs, chunksize=64))
    else:
        results = [_decode_one(j) for j in jobs]
    tensors, kept = [], []
    for item, (pixels, error, notes) in zip(items, results):
        for category, message in notes:
            warnings.warn(message, category, stacklevel=2)
            if issubclass(category, ImageTooWide) and scaled_down is not None:
                scaled_down.append(item.path)
        if pixels is None:
            skipped[f"image {error.split(' (')[0]}"] += 1  # the reason without file-specific details
        else:
            tensors.append(torch.from_numpy(pixels))
            kept.append(item)
    if not width:
        return tensors, kept
    images = torch.stack(tensors) if tensors else torch.empty(0, channels, height, width, dtype=torch.uint8)
    return images, kept


def label_problem(text: str, charset: Charset, max_length: int) -> str:
    """Why a label cannot be learnt ('' if it can): it must not be empty, have every
    character in ``charset`` and be at most ``max_length`` CTC columns long (0: no limit)."""
    if not text:
        return "empty label"
    if charset.unknown(text):
        return "label with characters outside the charset"
    if max_length and required_length(text) > max_length:
        return "label too long for the model's output"
    return ""


def usable_labels(items: list[Item], charset: Charset, max_length: int, skipped: Skipped) -> list[Item]:
    """The items whose label can be learnt (``label_problem``); the others are counted."""
    usable = []
    for it in items:
        problem = label_problem(it.text, charset, max_length)
        if problem:
            skipped[problem] += 1
        else:
            usable.append(it)
    return usable


class OCRDataset(torch.utils.data.Dataset):
    """Decoded images (uint8) with their encoded labels, all held in memory.

    With ``charset`` and ``max_length`` given, items whose label has unknown characters, is
    empty, or needs more CTC columns than the model has are skipped and counted (training);
    in any-width mode (``width`` 0) so is an image narrower than its label needs (CTC's
    length rule, per image). ``scaled_down`` names the images wider than ``max_width``.
    """

    def __init__(self, items: list[Item], height: int, width: int, channels: int,
                 skipped: Skipped, charset: Charset | None = None, max_length: int = 0, workers: int = 2,
                 max_width: int = MAX_WIDTH, stride: int = COLUMN_STRIDE, levels: bool = False,
                 crop: bool = False):
        self.stride = stride  # the model's input pixels per output column
        if charset is not None:
            items = usable_labels(items, charset, max_length, skipped)
        self.scaled_down: list[str] = []
        self.images, self.items = decode_images(items, height, width, channels, skipped, workers, max_width,
                                                self.scaled_down, levels, crop)
        if charset is not None and not width:
            self._drop_too_narrow(skipped)
        self.targets = [charset.encode(it.text) for it in self.items] if charset is not None else None
        if not width:  # each image is already cut to its own width
            self.widths = torch.tensor([im.shape[-1] for im in self.images], dtype=torch.long)
            return
        # The columns each image needs: its content, and (training) room for CTC to emit its label.
        self.widths = content_widths(self.images)
        if charset is not None and len(self.items):
            room = torch.tensor([self.stride * required_length(it.text) for it in self.items])
            self.widths = torch.maximum(self.widths, room)

    def _drop_too_narrow(self, skipped: Skipped) -> None:
        """Any-width training: drop (and count) the images with fewer output columns than
        their label needs; each is read at its own width, so no padding could make room."""
        fits = [required_length(it.text) <= im.shape[-1] // self.stride for it, im in zip(self.items, self.images)]
        if not all(fits):
            skipped["image too narrow for its label"] += fits.count(False)
            self.images = [im for im, ok in zip(self.images, fits) if ok]
            self.items = [it for it, ok in zip(self.items, fits) if ok]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.images[i], (self.targets[i] if self.targets is not None else []), i

    def batch(self, index: list[int], trim: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training batch of items ``index``: uint8 images, concatenated targets, label
        lengths; with ``trim``, the images cut to ``crop_width`` of the widest one; in
        any-width mode, each image padded to the widest one."""
        images, targets, lengths, _ = collate([self[i] for i in index])
        if trim and isinstance(self.images, torch.Tensor):
            images = images[..., : crop_width(self.widths[index].max(), images.shape[3], self.stride)]
        return images, targets, lengths

    def batches(self, indexes: list[list[int]], trim: bool = False):
        """The training batches of each index list in turn (``batch``)."""
        return (self.batch(index, trim) for index in indexes)


class RenderedDataset(torch.utils.data.Dataset):
    """Training images made when a batch asks for them (``synth_text.SyntheticWords``): only
    the labels are held, so memory does not grow with the number of images. A fixed-width
    input only (``width`` > 0). ``batches`` renders them ahead of the training step in
    ``RENDER_WORKERS`` loader processes, so the training threads never wait for fonts.

    Items whose label cannot be learnt (``label_problem``) are skipped and counted, as in
    ``OCRDataset``. Trimming (``trim_padding``) cuts each batch to its widest image once it
    is rendered; ``widths``, which width-bucketing sorts by before any image exists, are the
    label lengths (a longer text renders wider).
    """

    def __init__(self, source, height: int, width: int, channels: int, skipped: Skipped, charset: Charset,
                 max_length: int = 0, stride: int = COLUMN_STRIDE, levels: bool = False, crop: bool = False):
        self.stride, self.ink = stride, (levels, crop)
        if not width:
            raise ValueError("images rendered on the fly need a fixed input width (width > 0)")
        self.source, self.shape, self.charset = source, (height, width, channels), charset
        self.index, lengths = array("q"), array("q")
        for i, item in enumerate(source):
            problem = label_problem(item.text, charset, max_length)
            if problem:
                skipped[problem] += 1
            else:
                self.index.append(i)
                lengths.append(len(item.text))
        self.widths = torch.tensor(lengths, dtype=torch.long)
        self.scaled_down: list[str] = []  # a fixed width shrinks a wide image; nothing to report

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        item = self.source[self.index[i]]
        image = load_tensor(self.source.render(self.index[i]), *self.shape, MAX_WIDTH, item.path, *self.ink)
        return image, self.charset.encode(item.text), i

    def stacked(self, batch: list, trim: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rendered items -> a training batch; with ``trim``, cut to the widest image's content
        (and the room its label needs), as ``OCRDataset.batch`` cuts."""
        images, targets, lengths, index = collate(batch)
        if trim:
            room = self.stride * max(required_length(self.source[self.index[i]].text) for i in index.tolist())
            images = images[..., : crop_width(max(int(content_widths(images).max()), room), images.shape[3],
                                              self.stride)]
        return images, targets, lengths

    def batch(self, index: list[int], trim: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training batch of items ``index``, rendered now."""
        return self.stacked([self[i] for i in index], trim)

    def batches(self, indexes: list[list[int]], trim: bool = False):
        """The training batches of each index list in turn, rendered ahead in loader processes."""
        loader = torch.utils.data.DataLoader(self, batch_sampler=indexes, collate_fn=partial(self.stacked, trim=trim),
                                             num_workers=RENDER_WORKERS, prefetch_factor=4)
        return iter(loader)


def pad_to_widest(images: list[torch.Tensor]) -> torch.Tensor:
    """Stack uint8 images (C, H, W) of any widths into (N, C, H, widest), each padded on the
    right with its own background (its bottom-right pixel), as ``resize_and_pad`` pads."""
    widest = max(im.shape[-1] for im in images)
    out = torch.empty(len(images), *images[0].shape[:2], widest, dtype=images[0].dtype)
    for o, im in zip(out, images):
        o[:] = im[:, -1:, -1:]
        o[..., : im.shape[-1]] = im
    return out


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
    """Stack images (padding any-width ones to the widest); concatenate targets the way
    ``nn.CTCLoss`` wants them."""
    images, targets, index = zip(*batch)
    flat, lengths = pack_targets(targets)
    same = all(im.shape == images[0].shape for im in images)
    return torch.stack(images) if same else pad_to_widest(list(images)), flat, lengths, torch.tensor(index)
