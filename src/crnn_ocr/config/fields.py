"""A config field's allowed values, and checking a value against them: the machinery under
``config``'s dataclasses (each field made by ``option``) and ``options``' generated flags."""
from __future__ import annotations

import math
from dataclasses import field


class ConfigError(ValueError):
    """A config value of the wrong type or out of range; the message is one line."""


def option(default, help: str, *, ge=None, gt=None, lt=None, choices=None, length=None, flag=None,
           aliases=(), special=None):
    """A config field: its default, help text and allowed values (``ge``: at least, ``gt``:
    more than, ``lt``: less than, ``choices``, ``length`` of a list, ``special``: one more
    value allowed outside that range, with a meaning of its own), and its flag if it is not
    ``--`` + the name with dashes."""
    meta = {"help": help, "ge": ge, "gt": gt, "lt": lt, "choices": choices, "length": length, "flag": flag,
            "aliases": aliases, "special": special}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def describe(f) -> str:
    """What field ``f`` allows, in words."""
    m, kind = f.metadata, str(f.type)
    if m["choices"]:
        return "one of " + ", ".join(str(c) for c in m["choices"])
    if kind == "bool":
        return "true or false"
    if kind in ("str", "list[str]"):
        return "text" if kind == "str" else "a list of texts"
    bounds = [f">= {m['ge']}" if m["ge"] is not None else "", f"> {m['gt']}" if m["gt"] is not None else "",
              f"< {m['lt']}" if m["lt"] is not None else ""]
    number = "a whole number" if "int" in kind else "a finite number"
    if kind.startswith("list"):
        number = f"{m['length']} whole numbers" if m["length"] else "whole numbers"
    special = f"{m['special']} or " if m.get("special") is not None else ""
    return special + " ".join([number, " and ".join(b for b in bounds if b)]).strip()


def _scalar_ok(value, kind: str, m: dict) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind == "int" and not isinstance(value, int):
        return False
    if m.get("special") is not None and value == m["special"]:
        return True
    if not math.isfinite(value) or (m["choices"] and value not in m["choices"]):
        return False
    return not ((m["ge"] is not None and value < m["ge"]) or (m["gt"] is not None and value <= m["gt"])
                or (m["lt"] is not None and value >= m["lt"]))


def check(section: str, f, value):
    """``value`` for field ``f`` of ``[section]``, ints made floats where a float is meant;
    ``ConfigError`` if it is not allowed."""
    kind, m = str(f.type), f.metadata
    if kind.startswith("list["):
        item = kind[5:-1]
        ok = isinstance(value, list) and all(_scalar_ok(v, item, m) for v in value) \
            and (m["length"] is None or len(value) == m["length"])
    else:
        ok = _scalar_ok(value, kind, m) and (not m["choices"] or value in m["choices"])
    if not ok:
        flag = m["flag"] or "--" + f.name.replace("_", "-")
        raise ConfigError(f"[{section}] {f.name} = {value!r} ({flag}): must be {describe(f)}")
    return float(value) if kind == "float" else value
