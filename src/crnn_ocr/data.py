"""Datasets: find the labelled images of a folder, and hold them decoded in memory for training.

Four layouts are recognised by their content (see ``detect_layout``): split folders
(``train/``, ``val/``, ``test/``), a folder of images labelled by their file names (the captcha
set), an IAM root (``words.txt`` + ``words/``) and a folder with ``labels.tsv``. Without a
path, synthetic captchas are generated in memory; with the path ``synth:words``, word images
rendered from the system's fonts (``synth_text``). Bad items are skipped and counted in a
``Skipped`` tally that the commands print at the end; unusable input raises ``DataError``.
"""
from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .charset import Charset, ctc_required_length
from .images import IMAGE_SUFFIXES, BadImage, content_widths, load_tensor

CAPTCHA_ALPHABET = "2345678bcdefgmnpwxy"  # the Kaggle captcha set's 19 symbols
SYNTHETIC_WORDS = "synth:words"  # a DataConfig.path that means: words rendered from system fonts


class DataError(Exception):
    """Input that cannot be used at all (missing path, empty dataset, ...)."""


@dataclass
class Item:
    """One labelled image: a file path, or an in-memory image with a display name."""

    text: str
    path: str
    image: Image.Image | None = None


class Skipped(Counter):
    """Reasons items were skipped, with counts; ``str()`` gives a one-line summary."""

    def __str__(self) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in self.most_common())


# ---------------------------------------------------------------------------------------------
# Layouts


def detect_layout(path: str | Path) -> str:
    """``"splits"``, ``"iam"``, ``"tsv"`` or ``"folder"``, by what ``path`` contains."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"dataset path does not exist: {path}")
    if not p.is_dir():
        raise DataError(f"dataset path is not a folder: {path}")
    if (p / "train").is_dir() and (p / "val").is_dir():
        return "splits"
    if (p / "words.txt").is_file() and (p / "words").is_dir():
        return "iam"
    if (p / "labels.tsv").is_file():
        return "tsv"
    return "folder"


def load_folder(folder: str | Path, label_sep: str = "", skipped: Skipped | None = None) -> list[Item]:
    """Every image file of ``folder`` (not recursive); the label is the file name stem,
    cut at the first ``label_sep`` if one is given (``1234-7.jpg`` -> ``1234``)."""
    skipped = Skipped() if skipped is None else skipped
    detect_layout(folder)  # DataError for a missing path or a file
    items = []
    for p in sorted(Path(folder).iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not p.is_file():
            skipped["not a file"] += 1
            continue
        text = p.stem.split(label_sep)[0] if label_sep else p.stem
        if not text:
            skipped["empty label"] += 1
            continue
        items.append(Item(text, str(p)))
    return items


def load_tsv(folder: str | Path, skipped: Skipped | None = None) -> list[Item]:
    """``labels.tsv`` lines ``relative/path<TAB>text`` (UTF-8, any line ending)."""
    skipped = Skipped() if skipped is None else skipped
    folder = Path(folder)
    detect_layout(folder)  # DataError for a missing path or a file
    if not (folder / "labels.tsv").is_file():
        raise DataError(f"no labels.tsv in {folder}")
    items = []
    for raw in (folder / "labels.tsv").read_bytes().splitlines():
        try:
            line = raw.decode("utf-8").rstrip("\r").lstrip("\ufeff")  # a BOM from Windows editors
        except UnicodeDecodeError:
            skipped["labels.tsv line not UTF-8"] += 1
            continue
        if not line.strip():
            continue
        if "\t" not in line:
            skipped["labels.tsv line without a tab"] += 1
            continue
        rel, text = line.split("\t", 1)
        if not text:
            skipped["empty label"] += 1
            continue
        items.append(Item(text, str(folder / rel)))
    return items


def read_ids(files: list[str]) -> set[str]:
    """Word ids from one or more files, one id per line."""
    ids: set[str] = set()
    for f in files:
        try:
            ids.update(line.strip() for line in Path(f).read_text().splitlines() if line.strip())
        except OSError as e:
            raise DataError(f"cannot read id list {f}: {e.strerror}") from None
    return ids


def load_iam(root: str | Path, ids: set[str] | None = None, keep_err: bool = False,
             skipped: Skipped | None = None) -> list[Item]:
    """IAM words from the official ``words.txt``; ``ids`` restricts to those word ids.

    The transcription is every field from index 8 on, joined by one space. Lines marked
    ``err`` are skipped unless ``keep_err``; missing images are skipped and counted.
    """
    skipped = Skipped() if skipped is None else skipped
    root = Path(root)
    detect_layout(root)  # DataError for a missing path or a file
    if not (root / "words.txt").is_file():
        raise DataError(f"no words.txt in {root}")
    items = []
    with open(root / "words.txt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            parts = line.split()
            if len(parts) < 9 or parts[1] not in ("ok", "err") or parts[0].count("-") < 3:
                skipped["malformed words.txt line"] += 1
                continue
            word_id = parts[0]
            if ids is not None and word_id not in ids:
                continue
            if parts[1] == "err" and not keep_err:
                skipped["segmentation marked err"] += 1
                continue
            a, b = word_id.split("-")[:2]
            path = root / "words" / a / f"{a}-{b}" / f"{word_id}.png"
            if not path.is_file():
                skipped["image missing"] += 1
                continue
            items.append(Item(" ".join(parts[8:]), str(path)))
    return items


def split(items: list[Item], seed: int = 0, fractions=(0.7, 0.2, 0.1)) -> tuple[list[Item], ...]:
    """Deterministic seeded train/val/test split (70/20/10 by default, as in the report)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(items))
    n_val = round(fractions[1] * len(items))
    cut = [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]
    return tuple([items[i] for i in part] for part in cut)


def sample(items: list[Item], n: int, seed: int) -> list[Item]:
    """A seeded sample of ``n`` items (all of them if ``n`` is 0 or too large)."""
    if not n or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


class _SeededSecrets:
    """Stands in for the ``secrets`` module, which the ``captcha`` package draws its noise
    from and which cannot be seeded; with it, a seed gives the same captchas every time."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        self.randbelow, self.randbits, self.choice = rng.randrange, rng.getrandbits, rng.choice


def synthetic_captchas(n: int, seed: int, alphabet: str = CAPTCHA_ALPHABET, length: int = 5) -> list[Item]:
    """Captchas drawn by the ``captcha`` package, 200x50 like the Kaggle set."""
    import captcha.image

    rng = random.Random(seed)
    gen = captcha.image.ImageCaptcha(width=200, height=50)
    real_secrets, captcha.image.secrets = captcha.image.secrets, _SeededSecrets(seed)
    try:
        items = []
        for i in range(n):
            text = "".join(rng.choice(alphabet) for _ in range(length))
            items.append(Item(text, f"synthetic/{i:05d}-{text}.png", gen.generate_image(text)))
    finally:
        captcha.image.secrets = real_secrets
    return items


def _items_of(path: Path, label_sep: str, skipped: Skipped) -> list[Item]:
    layout = detect_layout(path)
    if layout == "tsv":
        return load_tsv(path, skipped)
    if layout == "iam":
        return load_iam(path, skipped=skipped)
    return load_folder(path, label_sep, skipped)


def training_items(data, seed: int, skipped: Skipped) -> tuple[list[Item], list[Item]]:
    """Training and validation items for a ``DataConfig``."""
    if not data.path:
        return synthetic_captchas(data.synthetic_train, seed), synthetic_captchas(data.synthetic_val, seed + 1)
    if data.path == SYNTHETIC_WORDS:
        from .synth_text import synthetic_words

        val = synthetic_words(data.synthetic_val, seed + 1, cover_charset=False)
        return synthetic_words(data.synthetic_train, seed), val
    root = Path(data.path)
    layout = detect_layout(root)
    if layout == "splits":
        train, val = _items_of(root / "train", data.label_sep, skipped), _items_of(root / "val", data.label_sep, skipped)
    elif layout == "iam" and (data.train_ids or data.val_ids):
        if not (data.train_ids and data.val_ids):
            raise DataError("an IAM root needs both --train-ids and --val-ids (or neither, for a 70/20/10 split)")
        train = load_iam(root, read_ids(data.train_ids), data.keep_err, skipped)
        val = load_iam(root, read_ids(data.val_ids), data.keep_err, skipped)
    else:
        items = load_iam(root, None, data.keep_err, skipped) if layout == "iam" else _items_of(root, data.label_sep, skipped)
        train, val, _ = split(items, seed)
    train, val = sample(train, data.train_limit, seed), sample(val, data.val_limit, seed + 1)
    if not train:
        raise DataError(f"no usable training images in {data.path}" + (f" (skipped: {skipped})" if skipped else ""))
    if not val:
        raise DataError(f"no usable validation images in {data.path}")
    return train, val


def evaluation_items(path: str, label_sep: str = "", split_ids: list[str] | None = None,
                     keep_err: bool = False, skipped: Skipped | None = None) -> list[Item]:
    """Every readable item of ``path`` (its ``test/`` folder for a split layout)."""
    skipped = Skipped() if skipped is None else skipped
    root = Path(path)
    layout = detect_layout(root)
    if layout == "splits":
        root = root / "test" if (root / "test").is_dir() else root / "val"
        layout = detect_layout(root)
    if layout == "iam":
        items = load_iam(root, read_ids(split_ids) if split_ids else None, keep_err, skipped)
    else:
        items = _items_of(root, label_sep, skipped)
    if not items:
        raise DataError(f"no labelled images found in {path}")
    return items


# ---------------------------------------------------------------------------------------------
# Decoded, in-memory dataset


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
                elif max_length and ctc_required_length(it.text) > max_length:
                    skipped["label too long for the model's output"] += 1
                else:
                    usable.append(it)
            items = usable
        self.images, self.items = decode_images(items, height, width, channels, skipped, workers)
        self.targets = [charset.encode(it.text) for it in self.items] if charset is not None else None
        # The columns each image needs: its content, and (training) room for CTC to emit its label.
        self.widths = content_widths(self.images)
        if charset is not None and len(self.items):
            room = torch.tensor([4 * ctc_required_length(it.text) for it in self.items])
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


MIN_WIDTH = 16  # the narrowest batch a trimmed run cuts to
TRIM_MARGIN = 8  # padding kept after the widest image: room for augmentation's shift and zoom


def crop_width(content: int, full: int) -> int:
    """The width to cut a batch to: its widest content plus ``TRIM_MARGIN``, rounded up to a
    multiple of 4 (the model's column stride), at least ``MIN_WIDTH``, at most the full width."""
    return min(full, max(MIN_WIDTH, -(-(int(content) + TRIM_MARGIN) // 4) * 4))


def batches(images: torch.Tensor, batch_size: int, trim: bool = False):
    """Yield (indices, uint8 batch) covering ``images`` in batches for inference.

    With ``trim``, every image is cut to its own ``crop_width``: images with the same cut
    width are batched together, so little compute goes to padding and an image's answer does
    not depend on the batch size or on its neighbours. The caller puts the results back in
    place with the indices.
    """
    n = len(images)
    if not trim:
        for start in range(0, n, batch_size):
            yield torch.arange(start, min(n, start + batch_size)), images[start : start + batch_size]
        return
    cut = torch.tensor([crop_width(w, images.shape[3]) for w in content_widths(images).tolist()], dtype=torch.long)
    for width in cut.unique().tolist():
        same = torch.nonzero(cut == width).flatten()
        for start in range(0, len(same), batch_size):
            index = same[start : start + batch_size]
            yield index, images[index, :, :, :width]


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
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([c for t in targets for c in t], dtype=torch.long)
    return torch.stack(images), flat, lengths, torch.tensor(index)
