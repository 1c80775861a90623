"""Synthetic captchas drawn by the ``captcha`` package, 200x50 like the Kaggle set: the
default training data, generated in memory and the same for the same seed."""
from __future__ import annotations

import random

from crnn_ocr.data.items import Item

CAPTCHA_ALPHABET = "2345678bcdefgmnpwxy"  # the Kaggle captcha set's 19 symbols


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
