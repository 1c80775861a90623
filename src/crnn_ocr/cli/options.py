"""Command-line flags generated from the config dataclasses' field metadata.

Every config field is a flag: ``--`` + its name with dashes (or the ``flag`` its metadata
names), its help text and allowed values from the field, ``--x/--no-x`` for true/false
fields. A flag's value lands in ``args`` under ``section.name``, so it cannot drift from its
field; values are converted and checked by ``config_fields.check`` (one-line ``ConfigError``).
"""
from __future__ import annotations

import argparse
from dataclasses import fields

from crnn_ocr.config.schema import Config
from crnn_ocr.config.sections import SECTIONS
from crnn_ocr.config.fields import ConfigError, check, describe

TITLES = {"data": "data", "model": "model", "train": "training"}


def flag_of(f) -> str:
    """The flag of config field ``f``."""
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, defaults: Config | None = None,
                     only: tuple[str, ...] | None = None) -> None:
    """One flag per config field (those named in ``only``, if given); help shows the default
    of ``defaults`` (the plain defaults if None) and what is allowed."""
    defaults = defaults or Config()
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{TITLES[section]} (override the config)")
        for f in fields(cls):
            if only is not None and f.name not in only:
                continue
            default = getattr(getattr(defaults, section), f.name)
            kind = str(f.type)
            help_text = f"{f.metadata['help']} ({describe(f)}; default: {default!r})".replace("%", "%%")
            names = [flag_of(f), *f.metadata["aliases"]]
            dest = f"{section}.{f.name}"
            if kind == "bool":
                group.add_argument(*names, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                                   help=help_text)
            else:
                nargs = (f.metadata["length"] or "+") if kind.startswith("list") else None
                group.add_argument(*names, dest=dest, nargs=nargs, metavar=f.name.upper(), help=help_text)


def _convert(text: str, kind: str):
    try:
        return int(text) if kind == "int" else float(text) if kind == "float" else text
    except ValueError:
        return text  # left as text: ``check`` refuses it with the field's message


def given_flags(args: argparse.Namespace) -> dict[str, dict]:
    """The config values given as flags, by section and field name, converted to their types."""
    given: dict[str, dict] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            value = getattr(args, f"{section}.{f.name}", None)
            if value is None:
                continue
            kind = str(f.type)
            item = kind[5:-1] if kind.startswith("list[") else kind
            value = [_convert(v, item) for v in value] if isinstance(value, list) else _convert(value, item)
            given.setdefault(section, {})[f.name] = check(section, f, value)
    return given


def apply_flags(cfg: Config, args: argparse.Namespace) -> Config:
    """``cfg`` with every config flag given in ``args`` written over it, checked."""
    for section, values in given_flags(args).items():
        for name, value in values.items():
            setattr(getattr(cfg, section), name, value)
    return cfg.validate()


__all__ = ["ConfigError", "add_config_flags", "apply_flags", "flag_of", "given_flags"]
