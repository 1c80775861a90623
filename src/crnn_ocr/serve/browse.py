"""The evaluation browser of ``crnn-ocr serve --browse EVAL_DIR``: the page ``/browse`` and
the data it shows, read once from an ``evaluate`` output folder (``predictions.tsv``,
``metrics.json``). It is not the place for reading images (``app``, ``pages``)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from crnn_ocr.serve.microbatch import RequestError

WEB = Path(__file__).parent / "web"


def add_browser(app: FastAPI, folder: Path) -> None:
    """``/browse``: the page; ``/v1/evaluation``: metrics and predictions of ``folder``;
    ``/v1/evaluation/images/{i}``: the image of prediction ``i`` (only images listed there)."""
    if not (folder / "predictions.tsv").is_file():
        raise ValueError(f"{folder} has no predictions.tsv; give a folder written by `crnn-ocr evaluate`")
    metrics_file = folder / "metrics.json"
    try:
        with open(folder / "predictions.tsv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        predictions = [{"index": i, "name": Path(r["path"]).name, "gold": r["gold"], "prediction": r["prediction"],
                        "correct": r["correct"] == "1", "confidence": float(r["confidence"])}
                       for i, r in enumerate(rows)]
    except (KeyError, TypeError, ValueError) as e:  # a missing column or field, not UTF-8, not JSON, not a number
        raise ValueError(f"{folder}: its predictions.tsv or metrics.json is not as `crnn-ocr evaluate` writes them "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})") from None

    def image_path(path: str) -> Path:
        p = Path(path)  # written relative to where evaluate ran, or absolute; else beside the report
        return p if p.is_absolute() or p.exists() else folder / p

    @app.get("/browse", include_in_schema=False)
    async def browse_page():
        return FileResponse(WEB / "browse.html")

    @app.get("/v1/evaluation", summary="The browsed evaluation: metrics and every prediction")
    async def evaluation():
        return {"folder": folder.name, "metrics": metrics, "predictions": predictions}

    @app.get("/v1/evaluation/images/{index}", summary="The image of one prediction")
    async def evaluation_image(index: int):
        if not 0 <= index < len(rows) or not (path := image_path(rows[index]["path"])).is_file():
            raise RequestError(404, "not_found", f"no image for prediction {index}")
        return FileResponse(path)
