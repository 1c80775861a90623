"""``Recognizer``: a trained model behind one call, for PIL images, arrays or paths.

>>> rec = Recognizer.load("runs/captcha/best.pt")      # doctest: +SKIP
>>> rec.predict(["a.png", "b.png"])                    # doctest: +SKIP
[('2b827', 0.98), ('3bnyf', 0.91)]
"""
from __future__ import annotations

from pathlib import Path

import torch

from .charset import Charset
from .checkpoint import load_model
from .config import Config
from .evaluate import recognize
from .images import load_tensor


class Recognizer:
    """A model with its charset and preprocessing settings."""

    def __init__(self, model: torch.nn.Module, charset: Charset, config: Config):
        self.model, self.charset, self.config = model.eval(), charset, config

    @classmethod
    def load(cls, path: str | Path) -> Recognizer:
        """Load a checkpoint written by ``crnn-ocr train``."""
        return cls(*load_model(path))

    def preprocess(self, images) -> torch.Tensor:
        """PIL images, arrays or paths -> uint8 (N, C, H, W); raises ``BadImage``."""
        d = self.config.data
        return torch.stack([load_tensor(im, d.height, d.width, d.channels) for im in images])

    def predict(self, images, batch_size: int = 64) -> list[tuple[str, float]]:
        """(text, confidence) for each image; confidence is the best CTC path's probability."""
        texts, conf, _ = recognize(self.model, self.preprocess(list(images)), self.charset, batch_size)
        return list(zip(texts, conf))
