"""``POST /v1/page``: a whole page in, its lines read by a line model out, as JSON.

A thin layer over ``crnn_ocr.pages.read_page``: ``uploads`` parses the request (one image:
multipart field ``image`` or JSON ``{"image": "<base64>"}``) and refuses a page over
``Limits.max_page_pixels`` from its header, before anything is decoded; the page is then
decoded and read on a thread of its own, one page at a time (layout, then its lines in
batches), so the event loop keeps answering. At most ``Batching.max_page_queue`` pages wait or
are being read; one more is answered 503. The answer is ``{"model": NAME, "page":
Page.to_dict()}``: lines in reading order, each with its box in page pixels, text,
confidence and words.

A line model is one that reads every image at its own width (``[data] width = 0``:
``printed-en``, ``handwriting-lines-en``); a fixed-width word model cannot read a line and is
refused. The layout's libraries (OpenCV, SciPy) are imported on the first page: without them
the endpoint answers 501 and the rest of the service works. It is not the place for the
layout or the reading itself (``crnn_ocr.pages``).
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from PIL import Image

from crnn_ocr.reading.recognizer import Recognizer
from crnn_ocr.serve.microbatch import RequestError
from crnn_ocr.serve.options import Batching, Limits
from crnn_ocr.serve.uploads import open_upload, unless_client_leaves, uploaded_page

PAGE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "image": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": {"type": "object", "properties": {
        "image": {"type": "string", "format": "byte"}}}}}}}
PAGE_DOCS = {"openapi_extra": PAGE_BODY, "summary": "Read a whole page: its lines in reading order, with boxes"}
PAGES_EXTRA = "OpenCV and SciPy (pip install 'crnn-ocr[pages]', or opencv-python-headless scipy)"


def line_models(recognizers: Mapping[str, Recognizer]) -> list[str]:
    """The names of the models that read lines: those that read any width."""
    return [name for name, rec in recognizers.items() if rec.config.data.any_width]


def page_reader_module():
    """``crnn_ocr.pages.reader``, or ``RequestError`` 501 naming what to install."""
    try:
        return import_module("crnn_ocr.pages.reader")
    except ImportError as e:
        raise RequestError(501, "pages_unavailable", f"reading pages needs {PAGES_EXTRA}; "
                           f"this service has no {e.name or 'layout library'}") from None


def read_upload(image: Image.Image, recognizer: Recognizer, name: str) -> dict:
    """The uploaded page decoded and read (``pages.read_page``), as JSON; ``image`` closed."""
    from crnn_ocr.pages.io import as_page_mode

    reader = page_reader_module()
    try:
        try:
            page = as_page_mode(image)  # decoded here: upright, gray or RGB
        except Exception as e:  # Pillow raises many kinds of errors on a broken file; all mean the same here
            raise RequestError(400, "not_an_image", f"page: cannot be decoded ({type(e).__name__})") from None
        # lines cut as the model's training lines were: a model from pages.load_recognizer knows
        # how; a bundled one served under its own name (or loaded by load_recognizers) by name
        margins = getattr(recognizer, "page_margins", None) or \
            reader.MARGINS.get(getattr(recognizer, "source", name), reader.PRINTED)
        return reader.read_page(page, recognizer, margins=margins).to_dict()
    finally:
        image.close()


class PageReader:
    """Reads the pages of ``/v1/page`` requests with ``recognizers``' line models, one page
    at a time on its own thread (started and stopped with the service)."""

    def __init__(self, recognizers: Mapping[str, Recognizer], limits: Limits, batching: Batching):
        self.recognizers, self.limits, self.batching = recognizers, limits, batching
        self.lines = line_models(recognizers)
        self.pending = 0  # pages waiting or being read
        self.executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="crnn-ocr-page")

    def stop(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def model(self, name: str | None) -> str:
        """The line model named ``name`` (None: the first one served); 404 or 400 otherwise."""
        if name is None:
            if not self.lines:
                raise RequestError(404, "no_line_model", "this service has no line model to read pages with "
                                   f"(models: {', '.join(self.recognizers) or 'none'}; e.g. --model printed-en)")
            return self.lines[0]
        if name not in self.recognizers:
            raise RequestError(404, "unknown_model", f"no model named {name!r}; models: {', '.join(self.recognizers)}")
        if name not in self.lines:
            raise RequestError(400, "not_a_line_model", f"{name!r} reads fixed-width word images, not lines; "
                               f"line models: {', '.join(self.lines) or 'none'}")
        return name

    async def read(self, request: Request, name: str | None) -> dict:
        """The page of ``request`` read by the line model ``name``: ``{"model", "page"}``."""
        name = self.model(name)
        page_reader_module()  # 501 before the body is read
        if self.pending >= self.batching.max_page_queue:
            raise RequestError(503, "queue_full", f"{self.pending} pages waiting or being read; try again shortly")
        self.pending += 1  # from now: the body read meanwhile holds its place
        try:
            image = open_upload(0, await uploaded_page(request, self.limits), self.limits.max_page_pixels, "page")
            job = self.executor.submit(read_upload, image, self.recognizers[name], name)
        except BaseException:
            self.pending -= 1
            raise
        # counted until its thread is done with it (a page being read when its client leaves still is)
        loop = asyncio.get_running_loop()
        job.add_done_callback(lambda _: loop.call_soon_threadsafe(self.done))
        try:
            page = await unless_client_leaves(request, asyncio.wrap_future(job))
        finally:
            if job.cancelled():  # never started: its image is closed here
                image.close()
        return {"model": name, "page": page}

    def done(self) -> None:
        self.pending -= 1


def add_page_route(app: FastAPI, reader: PageReader) -> None:
    """``POST /v1/page`` on ``app``, read by ``reader``."""

    @app.post("/v1/page", **PAGE_DOCS)
    async def page(request: Request, model: str | None = Query(None, description="a line model from /v1/models "
                                                                 "(default: the first one served)")):
        return JSONResponse(await reader.read(request, model))
