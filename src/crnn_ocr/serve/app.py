"""``crnn-ocr serve``: recognizers behind an HTTP API and a web page (FastAPI + uvicorn).

A thin layer over the Python API: ``uploads`` parses requests and enforces the limits, and
``microbatch`` prepares the images (``Recognizer._prepare``) and gathers those of concurrent
requests into one forward pass (``Recognizer._read_prepared``); ``pages`` reads whole pages
(``crnn_ocr.pages.read_page``) one at a time. ``guard`` refuses requests for
other hosts and adds the browser's security headers; ``connections`` bounds what a connection
may cost before the app sees a request (header size, read timeouts).

Endpoints: ``POST /v1/recognize`` (multipart field ``images``, repeatable, or JSON
``{"images": ["<base64>", ...]}``; ``?model=NAME&details=true``), ``POST /v1/page`` (one
page: field ``image`` or JSON ``{"image": "<base64>"}``; ``?model=LINE_MODEL``), ``GET /v1/models``,
``GET /healthz``, the page ``/``, OpenAPI docs at ``/docs`` (Swagger UI served from the
package); with an ``evaluate`` output folder, the page ``/browse`` and ``GET /v1/evaluation``.

>>> app = create_app({"captcha": Recognizer.load("runs/captcha/best.pt")})  # doctest: +SKIP
>>> uvicorn.run(app)                                                         # doctest: +SKIP
"""
from __future__ import annotations

import gc
import logging
import typing
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, create_model
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from crnn_ocr.hub import registry
from crnn_ocr.reading.onnx import OnnxModel
from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.serve.browse import add_browser
from crnn_ocr.serve.connections import REFUSED, uvicorn_options
from crnn_ocr.serve.guard import LOOPBACK_HOSTS, Guard
from crnn_ocr.serve.microbatch import MicroBatcher, RequestError, running
from crnn_ocr.serve.options import Batching, ConnectionLimits, Limits
from crnn_ocr.serve.pages import PageReader, add_page_route
from crnn_ocr.serve.uploads import open_uploads, unless_client_leaves, uploaded_images

WEB = Path(__file__).parent / "web"
logger = logging.getLogger("uvicorn.error")  # uvicorn's log: its format, its level


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


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


# A served model as /v1/models shows it: the fields of a bundled model's card
# (``hub.registry.ModelInfo``) that every model has, and how this service runs it.
CARD_FIELDS = ("name", "charset", "height", "width", "decoder")
_card_types = typing.get_type_hints(registry.ModelInfo)
ModelInfo = create_model("ModelInfo", **{f.name: (_card_types[f.name], ...) for f in fields(registry.ModelInfo)
                                         if f.name in CARD_FIELDS},
                         default=(bool, ...), backend=(str, ...), channels=(int, ...))


RECOGNIZE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
    "application/json": {"schema": {"type": "object", "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "byte"}}}}}}}}


RECOGNIZE_DOCS = {"openapi_extra": RECOGNIZE_BODY, "summary": "Read the text of one or many word images"}


# --- the app -------------------------------------------------------------------------------

def create_app(recognizers: Mapping[str, Recognizer], limits: Limits | None = None,
               batching: Batching | None = None, browse: str | Path | None = None,
               allowed_hosts: list[str] | None = None) -> FastAPI:
    """The service for ``recognizers`` (name -> ``Recognizer``; the first is the default),
    optionally with the page that browses the ``evaluate`` output folder ``browse``. Requests
    whose Host header is not one of ``allowed_hosts`` (default: this machine's loopback names;
    ``"*"``: any) are refused. While it runs, the objects that existed at its start are frozen
    out of the garbage collector's sight (``gc.freeze``; undone at shutdown)."""
    if not recognizers and browse is None:
        raise ValueError("serve at least one model or an evaluation folder")
    limits, batching = limits or Limits(), batching or Batching()
    if batching.max_queue < limits.max_images:
        raise ValueError(f"max_queue ({batching.max_queue}) must hold a full request ({limits.max_images} images)")
    recognizers = dict(recognizers)
    default = next(iter(recognizers), None)
    batchers: dict[str, MicroBatcher] = {}
    pages = PageReader(recognizers, limits, batching)

    app = FastAPI(title="crnn-ocr", summary="CRNN text recognition of word images and pages",
                  lifespan=lifespan(recognizers, batching, batchers, pages),
                  docs_url=None, redoc_url=None)
    app.add_middleware(Guard, allowed_hosts=LOOPBACK_HOSTS if allowed_hosts is None else allowed_hosts)
    add_error_handlers(app)

    @app.post("/v1/recognize", response_model=Recognition, **RECOGNIZE_DOCS)
    async def recognize(request: Request, model: str | None = Query(None, description="a name from /v1/models"),
                        details: bool = Query(False, description="per-character confidence and x-range")):
        name = model or default
        if name not in recognizers:
            raise RequestError(404, "unknown_model", f"no model named {name!r}; models: {', '.join(recognizers)}")
        encoded = await uploaded_images(request, limits)
        images = open_uploads(encoded, limits)
        del encoded  # each image holds its own bytes
        # 400 for an image that cannot be decoded; dropped (prepared no further, out of the
        # queue) if the client goes away first
        results = await unless_client_leaves(request, batchers[name].read(images, details))
        # The dict is the documented Recognition: answered without a second pass through pydantic.
        return JSONResponse({"model": name, "results": results})

    @app.get("/v1/models", response_model=list[ModelInfo], summary="The models this service reads with")
    async def models():
        return [model_info(name, rec, name == default) for name, rec in recognizers.items()]

    @app.get("/healthz", summary="Liveness: 200 while the service answers, with the images queued "
             "(prepared, waiting for the model) and being prepared, per model, and the pages waiting or being read")
    async def healthz():
        return {"status": "ok", "queued": {name: b.waiting for name, b in batchers.items()},
                "preparing": {name: b.preparing for name, b in batchers.items()}, "pages": pages.pending}

    add_page_route(app, pages)
    if browse is not None:
        add_browser(app, Path(browse))
    add_web(app)
    return app


def lifespan(recognizers: dict[str, Recognizer], batching: Batching, batchers: dict[str, MicroBatcher],
             pages: PageReader):
    """The service's lifespan: the batchers (put into ``batchers``) and the page reader run
    while it serves; the objects loaded before it are kept out of the garbage collector's sight."""

    @asynccontextmanager
    async def run(app: FastAPI):
        async with running(recognizers, batching, batchers):
            pages.start()
            # Everything loaded so far (torch, the models, the web stack) lives as long as the
            # service: out of the garbage collector's sight, so that a full collection does not
            # stall every request in flight for a large part of a second.
            gc.collect()
            gc.freeze()
            yield
            gc.unfreeze()
            pages.stop()

    return run


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure as a JSON ``{"error": {"code", "message"}}``, never a traceback."""

    @app.exception_handler(RequestError)
    async def refused(request, e: RequestError):
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, e: ClientDisconnect):  # one line, no traceback: anyone can do it
        client = "%s:%d" % tuple(request.client) if request.client else "a client"
        if not request.scope.get(REFUSED):  # else cut by a connection limit, logged there
            logger.info("%s: went away before the answer to %s %s; its work dropped", client, request.method,
                        request.url.path)
        return Response(status_code=499)  # sent to nobody

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


def add_web(app: FastAPI) -> None:
    """The page ``/``, its favicon, ``/docs`` and the pages' files (``/static``)."""

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")

    add_docs(app)
    app.mount("/static", StaticFiles(directory=WEB), name="static")  # after /static/swagger-ui


def add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI, its script and style served from the ``fastapi-offline`` package
    (no CDN: it works offline, and under the page's Content-Security-Policy, which allows no
    other origin); without that package, a JSON 404 that says so."""
    try:
        import fastapi_offline
    except ImportError:
        @app.get("/docs", include_in_schema=False)
        async def no_docs():
            return error_response(404, "not_found", "the API docs need the fastapi-offline package "
                                  "(pip install 'crnn-ocr[serve]'); the schema is at /openapi.json")
        return
    app.mount("/static/swagger-ui", StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"),
              name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(WEB / "docs.html")


def model_info(name: str, rec: Recognizer, default: bool) -> dict:
    d = rec.config.data
    return {"name": name, "default": default, "backend": "onnx" if isinstance(rec.model, OnnxModel) else "pytorch",
            "charset": rec.charset.chars, "height": d.height, "width": d.width, "channels": d.channels,
            "decoder": rec.default_decoder}


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
        recognizers[name].source = path  # a bundled name tells the page reader how its lines are cut
        recognizers[name]._decoder()  # its default decoder built now, not during the first request
    return recognizers


UVICORN_OPTIONS = {"timeout_graceful_shutdown": 10, "log_level": "info"}  # every server process's


def serve(recognizers: Mapping[str, Recognizer], host: str = "127.0.0.1", port: int = 8000,
          limits: Limits | None = None, batching: Batching | None = None, browse: str | Path | None = None,
          access_log: bool = False, connection: ConnectionLimits | None = None,
          allowed_hosts: list[str] | None = None) -> None:
    """Run the service until SIGINT or SIGTERM; requests in progress are answered first.
    ``access_log``: one line per request on stderr (uvicorn's access log); ``connection``:
    header size and timeouts; ``allowed_hosts``: default ``guard.hosts_of(host)``. Several
    processes: ``workers.run_workers``."""
    import uvicorn

    from crnn_ocr.serve.guard import hosts_of

    app = create_app(recognizers, limits, batching, browse, hosts_of(host) if allowed_hosts is None else allowed_hosts)
    uvicorn.run(app, host=host, port=port, access_log=access_log, **UVICORN_OPTIONS,
                **uvicorn_options(connection or ConnectionLimits()))
