"""The text of a synthetic printed line: natural English as documents hold it.

``random_line`` strings together words drawn as often as running text has them (the word
counts shipped with ``handwriting-en``, else the system dictionary), numbers, dates, prices,
e-mail addresses, URLs, names and code-like identifiers, with typographic quotes and dashes;
``plain`` writes the typographic characters a font family lacks in plain ASCII (the label
follows what is drawn). Rendering the line is ``lines``'.
"""
from __future__ import annotations

import random
from functools import cache

from crnn_ocr.data.synth.fonts import PRINTABLE, TYPOGRAPHIC
from crnn_ocr.data.synth.text import Vocabulary, vocabulary
from crnn_ocr.hub.registry import MODELS_DIR

MAX_CHARS = 64  # the longest line drawn
WORD_COUNTS = MODELS_DIR / "handwriting-en.words.txt"
# What a typographic character becomes in a family that does not have it (the label follows).
PLAIN = {"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "--", "…": "...", "•": "*", "€": "EUR",
         "£": "GBP", "°": "", "©": "(c)"}
DOMAINS = ("com", "org", "net", "co.uk", "de", "io", "edu", "gov", "fr")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


@cache
def words() -> Vocabulary:
    """English words drawn by their counts (``WORD_COUNTS``), or the system dictionary."""
    return vocabulary(str(WORD_COUNTS)) if WORD_COUNTS.is_file() else vocabulary()


def _word(rng: random.Random, capital: bool) -> str:
    w = words().draw(rng)
    r = rng.random()
    if r < 0.03:
        return w.upper()
    return w.capitalize() if capital or r < 0.08 else w


def _number(rng: random.Random) -> str:
    """A number as documents write them: counts, decimals, prices, percentages, dates, times,
    temperatures, phone numbers, ordinals, years."""
    kind = rng.randrange(16)
    n = rng.randint(0, 999 if rng.random() < 0.7 else 99999)
    return [
        str(n), f"{n:,}", f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}",
        f"{rng.choice('$£€')}{rng.randint(1, 9999):,}" + (f".{rng.randint(0, 99):02d}" if rng.random() < 0.5 else ""),
        f"{rng.randint(1, 9999)} {rng.choice(['EUR', 'USD', 'GBP', '€', '£'])}",
        f"{rng.randint(1, 100)}%", f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1900, 2030)}",
        f"{rng.randint(1900, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1900, 2030)}",
        f"{rng.randint(0, 23)}:{rng.randint(0, 59):02d}", f"{rng.randint(-30, 45)}°{rng.choice('CF')}",
        f"+{rng.randint(1, 99)} {rng.randint(10, 999)} {rng.randint(1000, 9999)} {rng.randint(100, 9999)}",
        f"{rng.randint(1, 99)}{rng.choice(['st', 'nd', 'rd', 'th'])}", str(rng.randint(1900, 2030)),
        f"{rng.randint(1, 12)}.{rng.randint(1, 30)}", f"No. {rng.randint(1, 999)}",
    ][kind]


def _name(rng: random.Random) -> str:
    return "".join(c for c in words().draw(rng).lower() if c.isalnum()) or "info"


def _address(rng: random.Random) -> str:
    """An e-mail address or a URL."""
    host = f"{_name(rng)}.{rng.choice(DOMAINS)}"
    if rng.random() < 0.5:
        sep = rng.choice([".", "_", "-", ""])
        return f"{_name(rng)}{sep}{_name(rng) if sep else rng.randint(1, 99)}@{host}"
    path = "/".join(_name(rng) for _ in range(rng.randint(0, 2)))
    url = f"{rng.choice(['https://', 'http://', 'www.', 'https://www.'])}{host}" + (f"/{path}" if path else "")
    return url + (f"?id={rng.randint(1, 9999)}" if rng.random() < 0.15 else "")


def _identifier(rng: random.Random) -> str:
    """A code-like name: snake_case, camelCase, CONSTANT, a call, an attribute or an index."""
    parts = [_name(rng) for _ in range(rng.randint(1, 3))]
    kind = rng.randrange(6)
    name = ["_".join(parts), parts[0] + "".join(p.capitalize() for p in parts[1:]), "_".join(parts).upper(),
            "".join(p.capitalize() for p in parts), ".".join(parts), "_".join(parts)][kind]
    r = rng.random()
    if r < 0.3:
        return name + rng.choice(["()", f"({_name(rng)})", f"[{rng.randint(0, 9)}]", "();", " = 0;", " != None"])
    return name if r < 0.8 else rng.choice(["{", "<", "#", "$", "@", "--"]) + name + rng.choice(["}", ">", "", ":"])


def random_line(rng: random.Random, max_chars: int = MAX_CHARS) -> str:
    """A line of natural text of at most ``max_chars`` characters, single spaces between
    tokens: mostly words by their frequency (a capital after a full stop), with numbers,
    addresses, code-like names, punctuation and typographic quotes, dashes and bullets; one
    line in ten is a list item, one in twelve a run of random printable characters."""
    target = rng.randint(max(1, max_chars // 5), max_chars)
    if rng.random() < 0.08:  # every character, in any order: symbols a text rarely has
        return " ".join("".join(rng.choice(PRINTABLE.strip() + TYPOGRAPHIC) for _ in range(rng.randint(1, 8)))
                        for _ in range(max(1, target // 6)))[:max_chars].strip() or "x"
    curly = rng.random() < 0.5  # this line's quotes and apostrophes: typographic or typewriter
    apostrophe, quotes = ("’", ["“”", "‘’"]) if curly else ("'", ['""', "''"])
    tokens = [rng.choice(["•", "-", "*", "–", f"{rng.randint(1, 20)}.", f"({rng.choice('abcdei')})"])] \
        if rng.random() < 0.1 else []
    length, capital = sum(map(len, tokens)), rng.random() < 0.7
    while True:
        r = rng.random()
        token = (_word(rng, capital) if r < 0.8 else _number(rng) if r < 0.9 else _address(rng) if r < 0.94
                 else _identifier(rng) if r < 0.97 else rng.choice(["-", "–", "—", "&", "/", "+", "=", "*", "#", "|",
                                                                    "…", "©", "%"]))
        capital = False
        if token.isalpha() and len(token) > 3 and rng.random() < 0.04:
            token += apostrophe + rng.choice(["s", "t", "ll", "re", "ve", "d"])
        if rng.random() < 0.06:
            opening, closing = rng.choice(quotes + ["()", "[]"])
            token = opening + token + closing
        if rng.random() < 0.2:
            mark = rng.choice([",", ",", ",", ".", ".", ";", ":", "!", "?", "...", "…", ".”" if curly else '."'])
            token += mark
            capital = mark[0] in ".!?…"
        if length + len(token) + (1 if tokens else 0) > target:
            break
        tokens.append(token)
        length += len(token) + (1 if len(tokens) > 1 else 0)
    return " ".join(tokens) if tokens else token[:max_chars]


def plain(text: str, chars: frozenset[str]) -> str:
    """``text`` with each typographic character a family lacks (not in ``chars``) written plainly
    (``PLAIN``), single spaces kept."""
    out = "".join(c if c not in PLAIN or c in chars else PLAIN[c] for c in text)
    return " ".join(out.split())
