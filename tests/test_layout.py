"""The package's shape: imports run one way, from the command line and the service down to the
model, and no function or module grows past what a reader takes in at once."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "crnn_ocr"
# Lowest first: a stage may import from its own stage and the stages before it, never after.
# hub (the catalogue of bundled models) is low because configs, checkpoints and the reader all
# name bundled models; data (training and evaluation sets) sits above reading, whose
# preprocessing it shares.
STAGES = ("utils", "hub", "config", "model", "decoding", "reading", "data", "pages", "evaluation", "training",
          "serve", "cli")
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 300


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "crnn_ocr" and parts[1] in STAGES else None


def imports_of(path: Path) -> set[str]:
    """The crnn_ocr modules ``path`` imports (at the top or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("crnn_ocr"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("crnn_ocr"))
    return found


def test_every_module_belongs_to_a_stage():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert loose == [] and folders <= set(STAGES), (loose, folders - set(STAGES))


def test_imports_run_from_higher_stages_to_lower_ones():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        here = stage_of("crnn_ocr." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if here is None:
            continue
        for module in imports_of(path):
            there = stage_of(module)
            if there is not None and STAGES.index(there) > STAGES.index(here):
                upward.append(f"{path.relative_to(PACKAGE)} -> {module}")
    assert upward == []


def test_functions_and_modules_stay_small():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.name}: {length} lines")
    assert too_long == []
