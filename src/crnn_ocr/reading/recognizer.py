"""``Recognizer``: a trained model behind one call, for paths, bytes, PIL images or arrays.

One class for both back ends: a PyTorch model (a ``.pt`` checkpoint, a float16
``.safetensors`` model file, or a bundled model by name, ``registry``) or an exported ONNX
file (``.onnx``, run by ONNX Runtime, ``onnx_model``). Both read through ``inference.infer`` with
the same preprocessing (``crnn_ocr.images``) and decoders (``crnn_ocr.ctc``); only the step
from float images to log-probabilities differs.

>>> rec = Recognizer.load("captcha-v2")                # doctest: +SKIP
>>> rec.read(["a.png", b"...not an image..."])         # doctest: +SKIP
[Reading(text='2b827', confidence=0.98), Reading(text='', confidence=0.0, error='not an image')]
>>> rec.predict(["a.png", "b.png"])                    # doctest: +SKIP
[('2b827', 0.98), ('3bnyf', 0.91)]
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from crnn_ocr.hub import registry
from crnn_ocr.model.charset import Charset
from crnn_ocr.model.checkpoint import load, model_of
from crnn_ocr.config.schema import Config
from crnn_ocr.decoding.ctc import Decoder, GreedyDecoder, Hypothesis
from crnn_ocr.reading.images import BadImage, load_tensor, load_tensor_and_scale
from crnn_ocr.reading.infer import COLUMN_STRIDE, Images, column_stride, infer
from crnn_ocr.decoding.lexicon import Lexicon
from crnn_ocr.decoding.lm import LMDecoder
from crnn_ocr.reading.onnx import OnnxModel, load_onnx

__all__ = ["CharInfo", "OnnxModel", "Reading", "Recognizer"]

SINGLE_IMAGE = (str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray)


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
    """One image ready for the model (``Recognizer.prepare``): uint8 (C, H, W), the source's
    pixels per input pixel along x, and the source's width."""

    tensor: torch.Tensor
    scale: float
    width: int
    left: int = 0  # source columns cut off on the left (``[data] crop_to_ink``)


def usable_device(name: str) -> torch.device:
    """The torch device ``name``; ``ValueError`` if it is malformed or not available here."""
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


class Recognizer:
    """A model with its charset, preprocessing settings and decoders.

    Args:
        model: float images (N, C, H, W) in [0, 1] -> log-probabilities (T, N, classes);
            a ``CRNN`` (put in eval mode here) or an ``OnnxModel``.
        charset, config: the alphabet and settings the model was trained with.
        decoders: decoders by name besides ``"greedy"`` (e.g. ``{"lexicon": Lexicon(words)}``).
        default_decoder: the name ``read`` uses unless told; ``lazy``: decoders by name built
            on their first use (a bundled model's default language model).
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], charset: Charset, config: Config,
                 decoders: dict[str, Decoder] | None = None, default_decoder: str = "greedy",
                 lazy: dict[str, Callable[[], Decoder]] | None = None):
        if isinstance(model, torch.nn.Module):
            model.eval()
        self.model, self.charset, self.config = model, charset, config
        self.decoders: dict[str, Decoder] = {"greedy": GreedyDecoder(), **(decoders or {})}
        self.lazy = {name: make for name, make in (lazy or {}).items() if name not in self.decoders}
        if default_decoder not in self.decoders and default_decoder not in self.lazy:
            raise ValueError(f"default decoder {default_decoder!r} is not one of this recognizer's")
        self.default_decoder = default_decoder

    @classmethod
    def load(cls, path: str | Path, threads: int = 0, lexicon: Iterable[str | Path] | None = None,
             lm: Iterable[str | Path] | None = None, device: str = "cpu", backend: str = "pytorch") -> Recognizer:
        """Load a bundled model by name (``crnn-ocr models``), a checkpoint written by
        ``crnn-ocr train``, a ``.safetensors`` model file (``crnn-ocr release``) or a ``.onnx``
        file written by ``crnn-ocr export``.

        Args:
            threads: for ONNX Runtime; PyTorch's threads are set for the whole process with
                ``torch.set_num_threads``.
            lexicon, lm: word-list files (one word per line) for the ``"lexicon"`` and ``"lm"``
                decoders, with the model's training labels added; an empty list means the
                word list shipped with a bundled model (if any) and the training labels. A
                bundled model's language model uses the weights chosen for it (its card). A
                bundled model whose card names a default decoder (``lm`` for the handwriting
                models) reads with it unless told otherwise; it is built on first use (a
                second from the cache, ``lm.cache_dir()``; about 9 s the first time).
            device: where a PyTorch model runs (``"cpu"``, ``"cuda"``, ...); ONNX runs on the CPU.
            backend: ``"pytorch"``, or ``"onnx"``: a ``.pt`` or ``.safetensors`` model is
                exported in memory (a second or two) and run by ONNX Runtime, which reads
                batches on a CPU two to three times faster (the choice of ``crnn-ocr serve``).
                An ``.onnx`` file always runs on ONNX Runtime.
        """
        if backend not in ("pytorch", "onnx"):
            raise ValueError(f"unknown backend {backend!r} (expected 'pytorch' or 'onnx')")
        path = registry.resolve(path)
        onnx_file = Path(path).suffix.lower() == ".onnx"
        if (onnx_file or backend == "onnx") and usable_device(device).type != "cpu":
            raise ValueError(f"--device {device}: ONNX models run on the CPU here")
        if onnx_file:
            model, charset, config = load_onnx(path, threads)
            vocabulary = []
        else:
            ckpt = load(path)
            (model, charset, config), vocabulary = model_of(ckpt, path), ckpt.get("vocabulary", [])
            if backend == "onnx":
                from crnn_ocr.model.export import onnx_bytes  # here: the onnx package is needed only for this

                model = OnnxModel(onnx_bytes(model.eval(), charset, config), threads)
            else:
                model.to(usable_device(device))
        decoders: dict[str, Decoder] = {}
        info = registry.info_of(path)  # a bundled model: its own word list and language-model weights
        shipped = [info.word_list_path] if info is not None and info.word_list_path is not None else []
        weights = {"lexicon": {}, "lm": info.lm_weights if info is not None else {}}
        makers = {"lexicon": Lexicon.from_files, "lm": LMDecoder.from_files}
        for name, files in (("lexicon", lexicon), ("lm", lm)):
            if files is None:
                continue
            files = list(files) or shipped
            if not files and not vocabulary:
                raise ValueError(f"the {name} decoder needs words: give word lists (one word per line, e.g. "
                                 "/usr/share/dict/words); this model has no training labels or word list of its own")
            decoders[name] = makers[name](files, extra=vocabulary, **weights[name])
        # a bundled model's default decoder (its card) is built from its own word list when first used
        default = info.decoder if info is not None else "greedy"
        lazy = {default: partial(makers[default], shipped, extra=vocabulary, **weights[default])} \
            if default in makers and shipped else {}
        return cls(model, charset, config, decoders, default if default in decoders or lazy else "greedy", lazy)

    def decoder(self, name: str | Decoder | None = None) -> Decoder:
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

    def load_image(self, image) -> torch.Tensor:
        """One path, bytes, PIL image or array -> uint8 (C, H, W) (in any-width mode, W is the
        image's own width at the model's height); raises ``BadImage``."""
        d = self.config.data
        return load_tensor(image, d.height, d.width, d.channels, d.max_width, None, d.auto_levels, d.crop_to_ink)

    def collate(self, tensors: list[torch.Tensor]) -> Images:
        """Images as ``load_image`` makes them -> what ``recognize`` takes: one (N, C, H, W)
        tensor, or in any-width mode the list itself (each image is read at its own width)."""
        return list(tensors) if self.config.data.any_width else torch.stack(list(tensors))

    def preprocess(self, images) -> Images:
        """Paths, bytes, PIL images or arrays -> uint8 (N, C, H, W), or a list of (C, H, W) in
        any-width mode; raises ``BadImage``."""
        return self.collate([self.load_image(im) for im in images])

    def read(self, images, details: bool = False, decoder: str | Decoder | None = None,
             batch_size: int = 64) -> list[Reading]:
        """A ``Reading`` for each image (a path, bytes, PIL image, uint8 array HxW / HxWx1 /
        HxWx3, or a list of them); an image that cannot be read gets one with ``error`` set,
        and never stops the others. ``details``: each character's confidence, columns and
        pixel range in the original image. ``decoder``: a name or object; by default
        ``default_decoder`` (greedy, or what a bundled model's card says)."""
        return self.read_prepared(self.prepare(images), details, decoder, batch_size)

    def prepare(self, images) -> list[Prepared | Reading]:
        """The first half of ``read``: each image decoded and resized for the model (a
        ``Prepared``), or, if it cannot be read, its ``Reading`` with ``error`` set. ``serve``
        prepares the next requests while the model reads the previous ones."""
        d, prepared = self.config.data, []
        for image in as_list(images):
            try:
                prepared.append(Prepared(*load_tensor_and_scale(image, d.height, d.width, d.channels, d.max_width,
                                                                None, d.auto_levels, d.crop_to_ink)))
            except Exception as e:  # one bad image never drops the others
                prepared.append(Reading("", 0.0, error=str(e) if isinstance(e, BadImage) else
                                        f"unreadable ({type(e).__name__})"))
        return prepared

    def read_prepared(self, prepared: list[Prepared | Reading], details: bool = False,
                      decoder: str | Decoder | None = None, batch_size: int = 64) -> list[Reading]:
        """The second half of ``read``: the prepared images read in one pass (the readings of
        those that could not be prepared kept in their places)."""
        chosen, d = self.decoder(decoder), self.config.data
        readings = [p if isinstance(p, Reading) else None for p in prepared]
        loaded = [p for p in prepared if isinstance(p, Prepared)]
        if loaded:
            result = infer(self.model, self.collate([p.tensor for p in loaded]), self.charset, chosen, batch_size,
                           d.trim_padding, details)
            where = (i for i, r in enumerate(readings) if r is None)
            for i, h, p in zip(where, result.hypotheses, loaded):
                readings[i] = reading_of(h, p.scale, p.width, column_stride(self.model), p.left)
        return readings

    def predict(self, images, batch_size: int = 64) -> list[tuple[str, float]]:
        """(text, confidence) for each path, bytes, PIL image or array of ``images``; raises
        ``BadImage`` for the first that cannot be read."""
        readings = self.read(list(images), batch_size=batch_size)
        for r in readings:
            if r.error is not None:
                raise BadImage(r.error)
        return [(r.text, r.confidence) for r in readings]

    def recognize(self, images: Images, batch_size: int = 64) -> list[tuple[str, float]]:
        """(text, confidence) for each image of a uint8 batch (N, C, H, W) or list of (C, H, W)
        as ``load_image`` makes them, read with the default decoder; confidence is the
        probability of the best CTC path."""
        images = self.collate(images) if isinstance(images, list) else images
        result = infer(self.model, images, self.charset, self.decoder(), batch_size, trim=self.config.data.trim_padding)
        return list(zip(result.texts, result.confidences))
