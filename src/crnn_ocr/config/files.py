"""Config files: TOML read with their relative paths resolved and ``base`` chains followed, and
the paths of a saved config stripped to their names (``without_folders``)."""
from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from pathlib import Path

from crnn_ocr.config.fields import ConfigError
from crnn_ocr.config.sections import AUTO, SECTIONS, SYNTHETIC_LINES, SYNTHETIC_WORDS
from crnn_ocr.utils.files import read_text_file

MAX_CONFIG_BYTES = 2**20  # a config file is a few lines; /dev/zero is not one
PATH_KEYS = {"data": ("path", "train_ids", "val_ids", "synthetic_words"), "model": ("pretrained",)}
NOT_PATHS = ("", "none", AUTO, SYNTHETIC_WORDS, SYNTHETIC_LINES, "imagenet")  # values of those keys that name no file


def resolve_paths(raw: dict, folder: Path) -> dict:
    """The tables of a config file with the relative paths of ``PATH_KEYS`` joined to ``folder``
    (values of the wrong type are left for ``check`` to refuse)."""
    from crnn_ocr.hub.registry import models

    bundled = set(models())  # ``pretrained`` may name a bundled model: not a path either

    def resolved(value, key: str = ""):
        if not isinstance(value, str) or value in NOT_PATHS or Path(value).is_absolute() \
                or (key == "pretrained" and value in bundled):
            return value
        path = os.path.normpath(os.path.join(os.path.abspath(folder), value))
        if key == "pretrained" and os.sep not in value and "." not in value and not os.path.lexists(path):
            return value  # a bare name that is no file here: a misspelt model's name, reported as that
        return path

    for section, keys in PATH_KEYS.items():
        table, types = raw.get(section), {f.name: f.type for f in fields(SECTIONS[section])}
        for key in keys if isinstance(table, dict) else ():
            if key in table:
                value = table[key]
                table[key] = [resolved(v) for v in value] if isinstance(value, list) else \
                    resolved(value, key) if types[key] == "str" else value  # a text for a list: refused later
    return raw


def read_toml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A config file's tables, its paths resolved (``resolve_paths``), laid over those of the
    file its top-level ``base`` key names, if any (a chain of bases is followed; a loop is an
    error): an experiment that differs from another in one key says only that key."""
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) is not TOML, but is no reason to refuse the file
        raw = tomllib.loads(read_text_file(path, "config file", MAX_CONFIG_BYTES).decode("utf-8-sig"))
    except OSError as e:
        raise ConfigError(str(e)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    base = raw.pop("base", None)
    raw = resolve_paths(raw, path.parent)
    if base is None:
        return raw
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config file {path}: base must name another config file, not {base!r}")
    base_path, chain = path.parent / base, (*seen, path.resolve())
    if base_path.resolve() in chain:
        raise ConfigError(f"config file {path}: base {base!r} leads back to itself")
    merged = read_toml(base_path, chain)
    for section, table in raw.items():
        if isinstance(table, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **table}
        else:
            merged[section] = table  # a new table, or a wrong type for from_dict to refuse
    return merged


def without_folders(config: dict) -> dict:
    """A config dict (``Config.to_dict``) whose file paths (the data, its id lists, the
    weights it started from) keep only their last name: what a released file records of the
    run, without the folders of the machine that trained it."""
    out = {section: dict(table) if isinstance(table, dict) else table for section, table in config.items()}
    for section, keys in PATH_KEYS.items():
        table = out.get(section)
        for key in keys if isinstance(table, dict) else ():
            value = table.get(key)
            if isinstance(value, list):
                table[key] = [Path(v).name for v in value]
            elif isinstance(value, str) and value not in NOT_PATHS:
                table[key] = Path(value).name
    return out
