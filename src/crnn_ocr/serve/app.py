"""``crnn-ocr serve``: recognizers behind an HTTP API and a web page (FastAPI + uvicorn).

A thin layer over the Python API: ``uploads`` parses requests and enforces the limits, and
``microbatch`` prepares the images (``Recognizer.prepare``) and gathers those of concurrent
requests into one forward pass (``Recognizer.read_prepared``).

Endpoints: ``POST /v1/recognize`` (multipart field ``images``, repeatable, or JSON
``{"images": ["<base64>", ...]}``; ``?model=NAME&details=true``), ``GET /v1/models``,
``GET /healthz``, the page ``/``, OpenAPI docs at ``/docs``; with an ``evaluate`` output folder,
the page ``/browse`` and ``GET /v1/evaluation``.

>>> app = create_app({"captcha": Recognizer.load("runs/captcha/best.pt")})  # doctest: +SKIP
>>> uvicorn.run(app)                                                         # doctest: +SKIP
"""
from __future__ import annotations

import csv
import gc
import json
from collections.abc import Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from crnn_ocr.serve.microbatch import Batching, MicroBatcher, RequestError, running
from crnn_ocr.reading.onnx import OnnxModel
from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.serve.uploads import Limits, open_upload, uploaded_images

WEB = Path(__file__).parent / "web"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# --- response documentation ----------------------------------------------------------------

class CharResult(BaseModel):
    char: str
    confidence: float
    columns: tuple[int, int] | None = None
    x: tuple[int, int] | None = None


class Result(BaseModel):
    text: str
    confidence: float
    chars: list[CharResult] | None = None


class Recognition(BaseModel):
    model: str
    results: list[Result]


class ModelInfo(BaseModel):
    name: str
    default: bool
    backend: str
    charset: str
    height: int
    width: int
    channels: int


RECOGNIZE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"type": "object", "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "byte"}}}}}}}}


RECOGNIZE_DOCS = {"openapi_extra": RECOGNIZE_BODY, "summary": "Read the text of one or many word images"}


# --- the app -------------------------------------------------------------------------------

def create_app(recognizers: Mapping[str, Recognizer], limits: Limits | None = None,
               batching: Batching | None = None, browse: str | Path | None = None) -> FastAPI:
    """The service for ``recognizers`` (name -> ``Recognizer``; the first is the default),
    optionally with the page that browses the ``evaluate`` output folder ``browse``. While it
    runs, the objects that existed at its start are frozen out of the garbage collector's
    sight (``gc.freeze``; undone at shutdown)."""
    if not recognizers and browse is None:
        raise ValueError("serve at least one model or an evaluation folder")
    limits, batching = limits or Limits(), batching or Batching()
    if batching.max_queue < limits.max_images:
        raise ValueError(f"max_queue ({batching.max_queue}) must hold a full request ({limits.max_images} images)")
    recognizers = dict(recognizers)
    default = next(iter(recognizers), None)
    batchers: dict[str, MicroBatcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with running(recognizers, batching, batchers):
            # Everything loaded so far (torch, the models, the web stack) lives as long as the
            # service: out of the garbage collector's sight, so that a full collection does not
            # stall every request in flight for a large part of a second.
            gc.collect()
            gc.freeze()
            yield
            gc.unfreeze()

    app = FastAPI(title="crnn-ocr", summary="CRNN text recognition of word images", lifespan=lifespan)

    add_error_handlers(app)

    @app.post("/v1/recognize", response_model=Recognition, **RECOGNIZE_DOCS)
    async def recognize(request: Request, model: str | None = Query(None, description="a name from /v1/models"),
                        details: bool = Query(False, description="per-character confidence and x-range")):
        name = model or default
        if name not in recognizers:
            raise RequestError(404, "unknown_model", f"no model named {name!r}; models: {', '.join(recognizers)}")
        encoded = await uploaded_images(request, limits)
        images = [open_upload(i, data, limits.max_pixels) for i, data in enumerate(encoded)]
        results = await batchers[name].read(images, details)  # 400 for an image that cannot be decoded
        # The dict is the documented Recognition: answered without a second pass through pydantic.
        return JSONResponse({"model": name, "results": results})

    @app.get("/v1/models", response_model=list[ModelInfo], summary="The models this service reads with")
    async def models():
        return [model_info(name, rec, name == default) for name, rec in recognizers.items()]

    @app.get("/healthz", summary="Liveness: 200 while the service answers, with the images queued "
             "(prepared, waiting for the model) and being prepared, per model")
    async def healthz():
        return {"status": "ok", "queued": {name: b.waiting for name, b in batchers.items()},
                "preparing": {name: b.preparing for name, b in batchers.items()}}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html")

    if browse is not None:
        add_browser(app, Path(browse))
    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure as a JSON ``{"error": {"code", "message"}}``, never a traceback."""

    @app.exception_handler(RequestError)
    async def refused(request, e: RequestError):
        return error_response(e.status, e.code, e.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        where = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        return error_response(422, "invalid_parameter", where)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return error_response(e.status_code, "http_error", str(e.detail))

    @app.exception_handler(Exception)
    async def failed(request, e: Exception):  # logged by uvicorn; the client gets no traceback
        return error_response(500, "internal_error", f"the service failed ({type(e).__name__})")


def model_info(name: str, rec: Recognizer, default: bool) -> dict:
    d = rec.config.data
    return {"name": name, "default": default, "backend": "onnx" if isinstance(rec.model, OnnxModel) else "pytorch",
            "charset": rec.charset.chars, "height": d.height, "width": d.width, "channels": d.channels,
            "decoder": rec.default_decoder}


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


def load_recognizers(specs: list[str], threads: int = 0, backend: str = "onnx") -> dict[str, Recognizer]:
    """``NAME=PATH`` or ``PATH`` (named after the file, or its folder for ``best``/``last``)
    -> name -> ``Recognizer``, run by ``backend`` (``Recognizer.load``)."""
    recognizers = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            path = spec
            p = Path(path)
            name = p.parent.name if p.stem in ("best", "last") and p.parent.name else p.stem
        if name in recognizers:
            raise ValueError(f"two models named {name!r}; name them with NAME=PATH")
        recognizers[name] = Recognizer.load(path, threads=threads, backend=backend)
        recognizers[name]._decoder()  # its default decoder built now, not during the first request
    return recognizers


UVICORN_OPTIONS = {"timeout_graceful_shutdown": 10, "log_level": "info"}  # every server process's


def serve(recognizers: Mapping[str, Recognizer], host: str = "127.0.0.1", port: int = 8000,
          limits: Limits | None = None, batching: Batching | None = None, browse: str | Path | None = None,
          access_log: bool = False) -> None:
    """Run the service until SIGINT or SIGTERM; requests in progress are answered first.
    ``access_log``: one line per request on stderr (uvicorn's access log). Several processes:
    ``workers.run_workers``."""
    import uvicorn

    app = create_app(recognizers, limits, batching, browse)
    uvicorn.run(app, host=host, port=port, access_log=access_log, **UVICORN_OPTIONS)
