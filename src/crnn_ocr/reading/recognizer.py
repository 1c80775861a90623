"""``Recognizer``: a trained model behind two calls, ``load`` and ``read``, for paths, bytes,
PIL images or arrays.

One class for both back ends: an ONNX file run by ONNX Runtime (every bundled model, found by
name in ``hub.registry``, and any file of ``crnn-ocr export``: numpy only, PyTorch is never
imported) or a PyTorch model (a ``.pt`` checkpoint of ``crnn-ocr train``, a ``.safetensors``
model file, or an ONNX file turned back into one with ``backend="pytorch"``). Both read
through ``infer.infer`` with the same preprocessing (``data.images``) and decoders
(``decoding``); only the step from float images to log-probabilities differs.

>>> rec = Recognizer.load("captcha-v2")                # doctest: +SKIP
>>> rec.read(["a.png", b"...not an image..."])         # doctest: +SKIP
[Reading(text='2b827', confidence=0.98), Reading(text='', confidence=0.0, error='not an image')]
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from crnn_ocr.config.schema import Config
from crnn_ocr.reading.images import BadImage, load_array_and_scale
from crnn_ocr.decoding.ctc import Decoder, GreedyDecoder, Hypothesis, decoder_class
from crnn_ocr.hub import registry
from crnn_ocr.model.charset import Charset
from crnn_ocr.reading.infer import COLUMN_STRIDE, column_stride, infer
from crnn_ocr.reading.onnx import OnnxModel, load_onnx
from crnn_ocr.utils.runtime import apply_threads, thread_count

__all__ = ["CharInfo", "OnnxModel", "Reading", "Recognizer"]

SINGLE_IMAGE = (str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray)
BACKENDS = ("auto", "onnx", "pytorch")
WORD_DECODERS = ("lexicon", "lm")  # the decoders that take word lists (``from_files``)


@dataclass
class CharInfo:
    """One character of a reading: its confidence, the output columns ``[start, end)`` that
    emit it, and the pixel range ``[x0, x1)`` they cover in the original image."""

    char: str
    confidence: float
    columns: tuple[int, int]
    x: tuple[int, int]


@dataclass
class Reading:
    """The text read from one image; ``chars`` when details were asked for, ``error`` (and
    an empty text) when the image could not be read."""

    text: str
    confidence: float
    chars: list[CharInfo] | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        """``{"text", "confidence"}``, plus ``"chars"`` and ``"error"`` when set (JSON-ready)."""
        d: dict = {"text": self.text, "confidence": self.confidence}
        if self.chars is not None:
            d["chars"] = [{"char": c.char, "confidence": c.confidence, "columns": list(c.columns), "x": list(c.x)}
                          for c in self.chars]
        if self.error is not None:
            d["error"] = self.error
        return d


class Prepared(NamedTuple):
    """One image ready for the model (``Recognizer._prepare``): uint8 (C, H, W), the source's
    pixels per input pixel along x, and the source's width."""

    image: np.ndarray
    scale: float
    width: int
    left: int = 0  # source columns cut off on the left (``[data] crop_to_ink``)


def usable_device(name: str):
    """The torch device ``name``; ``ValueError`` if it is malformed or not available here."""
    import torch

    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as e:
        raise ValueError(f"device {name!r} is not usable here ({str(e).splitlines()[0][:80]})") from None
    if device.type not in ("cpu", "cuda", "mps"):  # e.g. "meta": tensors without data, no reading
        raise ValueError(f"device {name!r} is not one that reads images (cpu, cuda or mps)")
    return device


def as_list(images) -> list:
    """One image (path, bytes, PIL image or array) or an iterable of them -> a list."""
    return [images] if isinstance(images, SINGLE_IMAGE) else list(images)


def reading_of(h: Hypothesis, scale: float, width: int, stride: int = COLUMN_STRIDE, left: int = 0) -> Reading:
    """A hypothesis as a ``Reading``; column spans map to the original image's pixels through
    the resize ``scale`` (original pixels per input pixel), the column ``stride`` (input
    pixels per output column) and the ``left`` columns cropped off the original."""
    if h.spans is None:
        return Reading(h.text, h.confidence)
    def pixel(column: int) -> int:
        return min(width, left + round(column * stride * scale))
    chars = [CharInfo(s.char, s.confidence, (s.start, s.end), (pixel(s.start), pixel(s.end))) for s in h.spans]
    return Reading(h.text, h.confidence, chars)


def decoder_lists(decoder: str | None, lexicon: list[str] | None, words: list[str] | None) -> tuple[str | None, dict]:
    """The decoder asked for (``lexicon`` files imply "lexicon", ``words`` files "lm"; None: the
    model's default) and the ``Recognizer.load`` keywords for its word lists (an empty list: the
    bundled model's own word list and its training labels)."""
    decoder = decoder or ("lexicon" if lexicon else "lm" if words else None)
    return decoder, {"lexicon": (lexicon or []) if decoder == "lexicon" else None,
                     "lm": (words or []) if decoder == "lm" else None}


def pytorch_model(path: Path, device: str, threads: int, onnx: bool):
    """A checkpoint, model file or ONNX file as a PyTorch model on ``device`` (computing on
    ``threads`` CPU threads) with its charset, config and training labels; ``onnx``: exported
    in memory and run by ONNX Runtime."""
    try:
        from crnn_ocr.model.checkpoint import load, model_of
    except ImportError as e:  # a core install without PyTorch
        raise ValueError(f"{path}: reading this model needs PyTorch ({e.name} is not installed): "
                         "pip install 'crnn-ocr[train]', or read an ONNX file (crnn-ocr export)") from None
    apply_threads(threads)
    ckpt = load(path)
    (model, charset, config), vocabulary = model_of(ckpt, path), ckpt.get("vocabulary", [])
    if onnx:
        from crnn_ocr.model.export import onnx_bytes  # here: the onnx package is needed only for this

        return OnnxModel(onnx_bytes(model.eval(), charset, config), threads), charset, config, vocabulary
    return model.to(usable_device(device)), charset, config, vocabulary


class Recognizer:
    """A model with its charset, preprocessing settings and decoders: ``load`` one, ``read`` images.

    Args:
        model: float images (N, C, H, W) in [0, 1] -> log-probabilities (T, N, classes);
            an ``OnnxModel`` (numpy) or a ``CRNN`` (torch, put in eval mode here).
        charset, config: the alphabet and settings the model was trained with.
        decoders: decoders by name besides ``"greedy"`` (e.g. ``{"lexicon": Lexicon(words)}``).
        default_decoder: the name ``read`` uses unless told; ``lazy``: decoders by name built
            on their first use (a bundled model's default language model).
    """

    def __init__(self, model: Callable, charset: Charset, config: Config,
                 decoders: dict[str, Decoder] | None = None, default_decoder: str = "greedy",
                 lazy: dict[str, Callable[[], Decoder]] | None = None):
        if hasattr(model, "eval"):
            model.eval()
        self.model, self.charset, self.config = model, charset, config
        self.decoders: dict[str, Decoder] = {"greedy": GreedyDecoder(), **(decoders or {})}
        self.lazy = {name: make for name, make in (lazy or {}).items() if name not in self.decoders}
        if default_decoder not in self.decoders and default_decoder not in self.lazy:
            raise ValueError(f"default decoder {default_decoder!r} is not one of this recognizer's")
        self.default_decoder = default_decoder

    @classmethod
    def load(cls, path: str | Path, threads: int = 0, lexicon: Iterable[str | Path] | None = None,
             lm: Iterable[str | Path] | None = None, device: str = "cpu", backend: str = "auto") -> Recognizer:
        """Load a bundled model by name (``crnn-ocr models``), an ONNX file written by
        ``crnn-ocr export``, a checkpoint written by ``crnn-ocr train`` or a ``.safetensors``
        model file.

        Args:
            threads: CPU threads (0: the cores the machine can give, ``runtime.use_threads``).
            lexicon, lm: word-list files (one word per line) for the ``"lexicon"`` and ``"lm"``
                decoders, with the model's training labels added; an empty list means the
                word list shipped with a bundled model (if any) and the training labels. A
                bundled model's language model uses the weights chosen for it (its card). A
                bundled model whose card names a default decoder (``lm`` for the handwriting
                models) reads with it unless told otherwise; it is built on first use (a
                second from the cache, ``lm.cache_dir()``; about 9 s the first time).
            device: where a PyTorch model runs (``"cpu"``, ``"cuda"``, ...); ONNX runs on the CPU.
            backend: ``"auto"``: ONNX Runtime for an ONNX file (every bundled model) on the CPU,
                PyTorch for a checkpoint or another device; ``"onnx"``: a checkpoint is exported
                in memory (a second or two) and run by ONNX Runtime, which reads batches on a
                CPU two to three times faster; ``"pytorch"``: an ONNX file is turned back into
                the PyTorch model (needs the training extra).
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (expected one of: {', '.join(BACKENDS)})")
        threads = thread_count(threads)
        path = registry.resolve(path)
        onnx_file = Path(path).suffix.lower() == ".onnx"
        if backend == "auto":
            backend = "onnx" if onnx_file and device == "cpu" else "pytorch"
        if backend == "onnx" and device != "cpu" and usable_device(device).type != "cpu":
            raise ValueError(f"--device {device}: ONNX models run on the CPU here")
        if onnx_file and backend == "onnx":
            model, charset, config = load_onnx(path, threads)
            vocabulary = model.vocabulary
        else:
            model, charset, config, vocabulary = pytorch_model(Path(path), device, threads, backend == "onnx")
        info = registry.info_of(path)  # a bundled model: its own word list and language-model weights
        shipped = [info.word_list_path] if info is not None and info.word_list_path is not None else []
        weights = {"lexicon": {}, "lm": info.lm_weights if info is not None else {}}
        decoders: dict[str, Decoder] = {}
        for name, files in (("lexicon", lexicon), ("lm", lm)):
            if files is None:
                continue
            files = list(files) or shipped
            if not files and not vocabulary:
                raise ValueError(f"the {name} decoder needs words: give word lists (one word per line, e.g. "
                                 "/usr/share/dict/words); this model has no training labels or word list of its own")
            decoders[name] = decoder_class(name).from_files(files, extra=vocabulary, **weights[name])
        # a bundled model's default decoder (its card) is built from its own word list when first used
        default = info.decoder if info is not None else "greedy"
        lazy = {default: partial(decoder_class(default).from_files, shipped, extra=vocabulary, **weights[default])} \
            if default in WORD_DECODERS and shipped else {}
        return cls(model, charset, config, decoders, default if default in decoders or lazy else "greedy", lazy)

    def read(self, images, details: bool = False, decoder: str | Decoder | None = None,
             batch_size: int = 64) -> list[Reading]:
        """A ``Reading`` for each image (a path, bytes, PIL image, uint8 array HxW / HxWx1 /
        HxWx3, or a list of them); an image that cannot be read gets one with ``error`` set,
        and never stops the others. ``details``: each character's confidence, columns and
        pixel range in the original image. ``decoder``: a name (``decoding.ctc.DECODERS``) or
        a ``Decoder``; by default ``default_decoder`` (greedy, or what a bundled model's card says)."""
        return self._read_prepared(self._prepare(images), details, decoder, batch_size)

    def _decoder(self, name: str | Decoder | None = None) -> Decoder:
        """A decoder object, or the one of that name (None: the default one)."""
        if isinstance(name, Decoder):
            return name
        name = name or self.default_decoder
        if name in self.lazy:
            self.decoders[name] = self.lazy.pop(name)()
        if name not in self.decoders:
            raise ValueError(f"no decoder {name!r} (this recognizer has: {', '.join(sorted(self.decoders))}; "
                             "word lists come with Recognizer.load(..., lexicon=FILES, lm=FILES))")
        return self.decoders[name]

    def _collate(self, images: list[np.ndarray]):
        """Prepared images -> what ``infer`` takes: one (N, C, H, W) array, or in any-width
        mode the list itself (each image is read at its own width)."""
        return list(images) if self.config.data.any_width else np.stack(list(images))

    def _prepare(self, images) -> list[Prepared | Reading]:
        """The first half of ``read``: each image decoded and resized for the model (a
        ``Prepared``), or, if it cannot be read, its ``Reading`` with ``error`` set. ``serve``
        prepares the next requests while the model reads the previous ones."""
        d, prepared = self.config.data, []
        for image in as_list(images):
            try:
                prepared.append(Prepared(*load_array_and_scale(image, d.height, d.width, d.channels, d.max_width,
                                                               None, d.auto_levels, d.crop_to_ink)))
            except Exception as e:  # one bad image never drops the others
                prepared.append(Reading("", 0.0, error=str(e) if isinstance(e, BadImage) else
                                        f"unreadable ({type(e).__name__})"))
        return prepared

    def _read_prepared(self, prepared: list[Prepared | Reading], details: bool = False,
                       decoder: str | Decoder | None = None, batch_size: int = 64) -> list[Reading]:
        """The second half of ``read``: the prepared images read in one pass (the readings of
        those that could not be prepared kept in their places)."""
        chosen, d = self._decoder(decoder), self.config.data
        readings = [p if isinstance(p, Reading) else None for p in prepared]
        loaded = [p for p in prepared if isinstance(p, Prepared)]
        if loaded:
            result = infer(self.model, self._collate([p.image for p in loaded]), self.charset, chosen, batch_size,
                           d.trim_padding, details)
            where = (i for i, r in enumerate(readings) if r is None)
            for i, h, p in zip(where, result.hypotheses, loaded):
                readings[i] = reading_of(h, p.scale, p.width, column_stride(self.model), p.left)
        return readings
