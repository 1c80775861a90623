"""The images of a ``crnn-ocr serve`` request: the body (multipart field ``images`` or JSON
``{"images": ["<base64>", ...]}``; for ``/v1/page`` one page, field ``image`` or JSON
``{"image": "<base64>"}``) read within the ``Limits``, and each image opened but not
decoded: only its header is read (format, mode and size), so that a wrong upload, or one over
the pixel budget of an image or of the request, is refused before anything is decoded. Every
refusal is a ``microbatch.RequestError`` (status, code, message)."""
from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import warnings
from collections.abc import Awaitable

from fastapi import Request
from PIL import Image
from starlette.requests import ClientDisconnect

from crnn_ocr.serve.microbatch import RequestError
from crnn_ocr.serve.options import Limits

# Formats a client may upload; Pillow's others (EPS through Ghostscript, ...) are not opened.
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM"]


# Modes decoded at more than a byte per channel (16- and 32-bit, float): normalised to 8 bits
# in float64 (``data.images``), so each of their pixels costs about as much as this many others
# (the budgets of ``Limits`` count them so).
WIDE_MODES = {"I;16": 4, "I;16L": 4, "I;16B": 4, "I;16N": 4, "I": 4, "F": 4}


# --- the request -------------------------------------------------------------------------

async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over ``limit``."""
    # "close": the rest of the body is not read; the server drains a bounded amount of it and
    # closes, so that a client still sending reads this answer (``connections``)
    too_large = RequestError(413, "body_too_large", f"request body over {limit} bytes", {"connection": "close"})
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def media_type(request: Request, field: str, example: str) -> str:
    """The request's content type: multipart or JSON, else refused with 415."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/json"):
        raise RequestError(415, "unsupported_media_type", f"send multipart/form-data (field '{field}') or "
                           f"application/json ({example})")
    return kind


def json_object(body: bytes, expected: str) -> dict:
    """The JSON body as an object, else 400 ``bad_json`` saying what was ``expected``."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise RequestError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise RequestError(400, "bad_json", f"expected {expected}")
    return payload


async def uploaded_images(request: Request, limits: Limits) -> list[bytes]:
    """The encoded images of a multipart or JSON request."""
    kind = media_type(request, "images", '{"images": ["<base64>", ...]}')
    body = await read_body(request, limits.max_body_bytes)
    if kind == "application/json":
        items = json_object(body, '{"images": ["<base64>", ...]}').get("images")
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise RequestError(400, "bad_json", 'expected {"images": ["<base64>", ...]}')
        check_count(len(items), limits.max_images)
        return [decode_base64(i, s) for i, s in enumerate(items)]
    return multipart_files(body, request.headers["content-type"], ("images",), limits.max_images)


async def uploaded_page(request: Request, limits: Limits) -> bytes:
    """The one encoded page of a ``/v1/page`` request: multipart field ``image`` (or
    ``images``), or JSON ``{"image": "<base64>"}`` (or ``{"images": ["<base64>"]}``)."""
    kind = media_type(request, "image", '{"image": "<base64>"}')
    body = await read_body(request, limits.max_body_bytes)
    if kind == "multipart/form-data":
        return multipart_files(body, request.headers["content-type"], ("image", "images"), 1, "page")[0]
    payload = json_object(body, '{"image": "<base64>"}')
    items = [payload["image"]] if "image" in payload else payload.get("images")
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise RequestError(400, "bad_json", 'expected {"image": "<base64>"}')
    check_count(len(items), 1, "page", "image")
    return decode_base64(0, items[0])


async def unless_client_leaves(request: Request, work: Awaitable):
    """``work``'s result; if the client disconnects first, ``work`` is cancelled and
    ``ClientDisconnect`` raised. (Once a request's body is read, the server's next message
    for it is the disconnect, or nothing until the answer is sent.)"""
    task = asyncio.ensure_future(work)

    async def left():
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(left())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise ClientDisconnect()
    return task.result()


def multipart_files(body: bytes, content_type: str, names: tuple[str, ...], max_files: int,
                    what: str = "image") -> list[bytes]:
    """The files of a multipart body in the fields ``names``: at least one, at most ``max_files``."""
    parts = multipart_parts(body, content_type, max_parts=max_files + 16)
    files = [(is_file, data) for name, is_file, data in parts if name in names]
    check_count(len(files), max_files, what, names[0])
    if not all(is_file for is_file, _ in files):
        raise RequestError(400, "bad_multipart", f"the field '{names[0]}' must hold files")
    return [data for _, data in files]


def multipart_parts(body: bytes, content_type: str, max_parts: int) -> list[tuple[str, bool, bytes]]:
    """The parts of a multipart/form-data body, parsed in memory by python-multipart: (field
    name, whether it is a file, its bytes) each. (Starlette's form parser wraps every file in a
    temporary file object: about a seventh of the event loop's time per captcha request.)"""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise RequestError(400, "bad_multipart", "the content type has no multipart boundary")
    parts: list[list] = []
    header = [b"", b""]  # the field and value of the header being read

    def part_begin():
        if len(parts) == max_parts:
            raise RequestError(413, "too_many_images", f"more than {max_parts} parts in the request")
        parts.append(["", False, bytearray()])

    def header_end():
        if header[0].lower() == b"content-disposition":
            options = parse_options_header(header[1])[1]
            parts[-1][:2] = options.get(b"name", b"").decode("utf-8", "replace"), b"filename" in options
        header[:] = [b"", b""]

    callbacks = {"on_part_begin": part_begin, "on_header_end": header_end,
                 "on_header_field": lambda data, start, end: header.__setitem__(0, header[0] + data[start:end]),
                 "on_header_value": lambda data, start, end: header.__setitem__(1, header[1] + data[start:end]),
                 "on_part_data": lambda data, start, end: parts[-1][2].extend(data[start:end])}
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except MultipartParseError as e:
        raise RequestError(400, "bad_multipart", f"not a valid multipart body ({e})") from None
    return [(name, is_file, bytes(data)) for name, is_file, data in parts]


def check_count(n: int, max_images: int, what: str = "image", field: str = "images") -> None:
    if n == 0:
        raise RequestError(400, "no_images", f"the request holds no {what}s (field '{field}')")
    if n > max_images:
        raise RequestError(413, "too_many_images", f"{n} images; at most {max_images} {what}"
                           f"{'s' if max_images > 1 else ''} per request")


def decode_base64(index: int, text: str) -> bytes:
    if text.startswith("data:") and "," in text:  # a data URL, as a browser makes it
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "bad_base64", f"image {index}: not valid base64") from None


def open_uploads(encoded: list[bytes], limits: Limits) -> list[Image.Image]:
    """The request's images opened (``open_upload``), refused with 413 when together they
    are over ``limits.max_request_pixels``."""
    images = [open_upload(i, data, limits.max_pixels) for i, data in enumerate(encoded)]
    total = sum(pixel_cost(im) for im in images)
    if total > limits.max_request_pixels:
        for im in images:
            im.close()
        raise RequestError(413, "too_many_pixels", f"{total} pixels in all; at most {limits.max_request_pixels} "
                           "per request (send fewer or smaller images)")
    return images


def pixel_cost(im: Image.Image) -> int:
    """The pixels of ``im``'s first frame as the budgets count them (``WIDE_MODES``)."""
    return im.width * im.height * WIDE_MODES.get(im.mode, 1)


def open_upload(index: int, data: bytes, max_pixels: int, what: str = "") -> Image.Image:
    """Uploaded bytes -> a PIL image, opened but not decoded: the header gives the format,
    mode and pixel count, checked here; the pixels are decoded by ``Recognizer._prepare`` (an
    image that fails there is refused then, before its request is queued). ``what``: the
    image as the messages name it (default ``image INDEX``)."""
    what = what or f"image {index}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RequestError(413, "too_many_pixels", f"{what}: too many pixels") from None
    except Exception:  # Pillow raises many kinds of errors on arbitrary bytes; all mean the same here
        raise RequestError(400, "not_an_image", f"{what}: not an image ({', '.join(FORMATS)})") from None
    if pixel_cost(im) > max_pixels:
        wide = f" ({im.mode}: each pixel counts {WIDE_MODES[im.mode]})" if im.mode in WIDE_MODES else ""
        im.close()
        raise RequestError(413, "too_many_pixels", f"{what}: {im.width}x{im.height} pixels{wide}; "
                           f"at most {max_pixels} per {what.split()[0]}")
    return im
