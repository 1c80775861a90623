"""What one HTTP connection may cost ``crnn-ocr serve``: the size of a request's headers, the
time to send them, the time to send the body, and how much of a refused body is read after the
answer. Beyond them the connection is answered (JSON 408 or 431) and closed, so a client that
never finishes holds a connection for seconds, not forever, and costs the others nothing.

uvicorn parses HTTP with httptools and has no such limits of its own (its only one is the
keep-alive timeout: idle time between two requests). An ASGI middleware cannot add them either:
the app is called only once the headers are complete. So they live here, in a small subclass of
uvicorn's httptools protocol (``protocol_class``), which is what ``uvicorn.Config(http=...)``
takes. It is not the place for request content (``uploads.Limits``: body size, images, pixels).
"""
from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from crnn_ocr.serve.options import ConnectionLimits

logger = logging.getLogger("uvicorn.error")
REFUSED = "crnn_ocr.refused"  # in a request's scope: this module cut its connection, and said why


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete JSON error answer that closes the connection, as the app's errors read."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


class _ClosingAfterBody:
    """The transport as a request's answer sees it: its ``close`` waits (``drain``) while the
    client is still sending that request's body."""

    def __init__(self, protocol: GuardedHttpToolsProtocol):
        self._protocol = protocol

    def close(self) -> None:
        self._protocol.close_after_body()

    def __getattr__(self, name):
        return getattr(self._protocol.transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``ConnectionLimits`` (``limits``, set by
    ``protocol_class``). One timer per connection: the header deadline until a request's headers
    are complete, then the body deadline until its body is, then uvicorn's keep-alive timer."""

    limits = ConnectionLimits()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # in_head: a request has begun and its headers are not complete; head_bytes: their size
        self.in_head, self.head_bytes, self.draining, self.drained = False, 0, False, 0
        self.deadline: asyncio.TimerHandle | None = None
        self.arm(self.limits.header_timeout, self.header_timed_out)  # also a connection that sends nothing
        if len(self.connections) > self.limits.max_connections:  # (this one counted)
            self.refuse(503, "Service Unavailable", "too_many_connections",
                        f"more than {self.limits.max_connections} open connections; try again shortly")

    def arm(self, seconds: float, handler) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(seconds, handler)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def connection_lost(self, exc) -> None:
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.draining or (self.cycle is not None and self.cycle.response_complete and self.cycle.more_body):
            self.drained += len(data)  # the rest of a body answered already: read and dropped
            if self.drained > self.limits.drain_mb * 1024 * 1024:
                self.transport.close()
                return
        super().data_received(data)
        # A chunk read while a request's headers are incomplete counts whole (with, in a
        # pipelined chunk, the end of the request before: an overcount no client meets).
        if self.in_head and not self.transport.is_closing():
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_header_bytes:
                self.refuse(431, "Request Header Fields Too Large", "headers_too_large",
                            f"request line and headers over {self.limits.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes = True, 0
        self.arm(self.limits.header_timeout, self.header_timed_out)  # from the request's first byte

    def on_headers_complete(self) -> None:
        self.in_head = False
        # headers that came whole in one read are measured here ("NAME: VALUE\r\n" each)
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self.refuse(431, "Request Header Fields Too Large", "headers_too_large",
                        f"request line and headers over {self.limits.max_header_bytes} bytes")
            return
        self.arm(self.limits.body_timeout, self.body_timed_out)  # disarmed at once when there is no body
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _ClosingAfterBody(self)

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():  # else refused in the same read: nothing more to do
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.transport.is_closing():
            return
        self.disarm()
        answered = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        if self.draining:  # the refused body has all been read: the client now reads the answer
            self.transport.close()
        elif answered:  # answered before its body ended: now idle, as after any answer
            self.arm(self.limits.keep_alive_timeout, self.transport.close)

    def close_after_body(self) -> None:
        """The answer asks to close the connection: at once if the request's body has been
        read, else after it (up to ``drain_mb`` or the body deadline), having told the client
        that nothing more comes (half-close), so its answer is not lost in a reset."""
        if self.cycle is None or not self.cycle.more_body or self.transport.is_closing():
            self.transport.close()
            return
        self.draining = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()

    def header_timed_out(self) -> None:
        self.deadline = None
        if self.in_head:
            self.refuse(408, "Request Timeout", "header_timeout",
                        f"request headers not complete within {self.limits.header_timeout:g} s")
        else:
            self.transport.close()  # connected and sent nothing

    def body_timed_out(self) -> None:
        self.deadline = None
        if self.cycle is None or self.cycle.response_started:
            self.transport.close()  # answered already, or never started: nothing more to say
            return
        self.refuse(408, "Request Timeout", "body_timeout",
                    f"request body not complete within {self.limits.body_timeout:g} s")

    def refuse(self, status: int, reason: str, code: str, message: str) -> None:
        """Answer ``status`` with a JSON error, close, and log one line; the app, if it is
        reading this request, sees the client gone."""
        client = "%s:%d" % self.client if self.client else "a client"
        logger.warning("%s: %s; connection closed (%d)", client, message, status)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.scope[REFUSED] = True  # logged here: the app need not log it again
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if not (self.draining or self.transport.is_closing()):
            self.transport.write(error_bytes(status, reason, code, message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:  # not HTTP at all: the same JSON as every refusal
        if not (self.draining or self.transport.is_closing()):
            self.transport.write(error_bytes(400, "Bad Request", "bad_http", msg))
        self.transport.close()


def protocol_class(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol for ``uvicorn.Config(http=...)`` enforcing ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def uvicorn_options(limits: ConnectionLimits) -> dict:
    """``uvicorn.Config`` keywords for a server with ``limits``: the guarded protocol, no
    WebSocket upgrades (the service has none), the keep-alive timeout."""
    return {"http": protocol_class(limits), "ws": "none", "timeout_keep_alive": limits.keep_alive_timeout}
