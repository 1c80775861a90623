"""``crnn-ocr serve``'s options, one dataclass per concern: what a request may hold
(``Limits``), what a connection may cost (``ConnectionLimits``), how requests are batched
(``Batching``), and how the server runs (``ServerOptions``). Each field carries its default,
help and allowed values (``config.fields.option``): the command's flags are generated from
them and checked by the same ``config.fields.check`` as the training config's
(``cli.serve``). Plain data only: importing this module imports neither torch nor the web stack.
"""
from __future__ import annotations

from dataclasses import dataclass

from crnn_ocr.config.fields import option


@dataclass
class Limits:
    """What one request may hold; beyond it the service answers 413. Pixels are those of an
    image's first frame (the only one read), read from its header before anything is decoded;
    a 16-bit, 32-bit or float image's count ``uploads.WIDE_MODES`` times. ``max_pixels``
    bounds the memory of decoding one image (the service decodes one at a time and keeps only
    its reduction to the model's input); ``max_request_pixels`` bounds the decoding time one
    request may take. A page (``/v1/page``) has its own budget, ``max_page_pixels``: it is
    decoded whole and read by the page reader, one page at a time."""

    max_body_mb: float = option(8.0, "request body, in MiB", gt=0)
    max_images: int = option(64, "images per request", ge=1)
    max_pixels: int = option(4_000_000, "pixels of one image", ge=1)
    max_request_pixels: int = option(16_000_000, "pixels of all the images of one request", ge=1)
    max_page_pixels: int = option(12_000_000, "pixels of the page of a /v1/page request (an A4 page at 300 dpi: "
                                  "8.7 M)", ge=1)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


@dataclass
class ConnectionLimits:
    """Per connection: headers of at most ``max_header_bytes`` (request line included),
    complete within ``header_timeout`` seconds of the connection or of a request's first byte;
    a body complete within ``body_timeout`` seconds of its headers; ``keep_alive_timeout``
    seconds idle between two requests. After an answer sent before its body was read (a 413),
    up to ``drain_mb`` more of that body are read and dropped, so that a client still sending
    reads the answer instead of a connection reset. A process holds at most
    ``max_connections`` open connections: one more is answered 503 and closed at once (a flood
    of connections is shed before it uses up the process's file descriptors)."""

    max_header_bytes: int = option(32 * 1024, "request line and headers, in bytes (beyond: 431)", ge=1024)
    header_timeout: float = option(5.0, "seconds to send a request's headers (beyond: 408)", gt=0)
    body_timeout: float = option(30.0, "seconds to send a request's body, from its headers (beyond: 408)", gt=0)
    keep_alive_timeout: float = option(5.0, "seconds an idle connection is kept between requests", gt=0)
    drain_mb: float = option(32.0, "MiB of a refused body read after the answer, before closing", ge=0)
    max_connections: int = option(1000, "open connections per server process (beyond: 503)", ge=1)


@dataclass
class Batching:
    """Micro-batching: the images of requests that arrive while the model is busy, or within
    ``max_wait_ms`` of each other, are read in one forward pass of at most ``max_batch``
    images (a larger request is read on its own). ``max_batch = 1`` reads one request at a
    time. Requests beyond ``max_queue`` waiting images are answered 503. Pages (``/v1/page``)
    are read one at a time on a thread of their own; beyond ``max_page_queue`` pages waiting
    or being read, a page is answered 503."""

    max_batch: int = option(16, "images per forward pass; 1 = one request at a time", ge=1)
    max_wait_ms: float = option(2.0, "how long a request waits for others to join its batch", ge=0, lt=60_000)
    max_queue: int = option(256, "images waiting; beyond, 503", ge=1)
    max_page_queue: int = option(4, "pages waiting or being read (/v1/page); beyond, 503", ge=1)


@dataclass
class ServerOptions:
    """The server's numbers (its address, processes and threads are plain flags)."""

    port: int = option(8000, "port to listen on", ge=0, lt=65536)
    threads: int = option(0, "CPU threads (0: all cores)", ge=0)
    workers: int = option(1, "server processes sharing the port, each with its own copy of the models and "
                          "its own batches; on a 2-core machine, 2 gave up to 20% more throughput and a lower "
                          "p99 latency at 32 concurrent clients (benchmarks/serve.py); one that dies is "
                          "replaced", ge=1)
