"""What a browser may do with ``crnn-ocr serve``: requests only for this service's own host
names, and responses that tell the browser to run only the service's own scripts, never to
guess a content type, and never to show the pages inside another site's frame.

The Host check is what stops DNS rebinding: a web page on another site whose name is made to
resolve to 127.0.0.1 would otherwise reach the service as a same-origin page and read its
answers; its requests carry that site's name as their Host. It is not the place for limits on
what a request holds (``uploads``) or what a connection costs (``connections``).
"""
from __future__ import annotations

import ipaddress
import json
import socket

LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "::1"]

# Every response's headers: the page and its scripts come from the service itself; images may be
# data: or blob: URLs (the page previews uploads); nothing may frame the pages.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                                 b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def hosts_of(host: str) -> list[str]:
    """The names a client may use for a service bound to ``host``: for loopback, this machine's
    loopback names; for a wildcard address (0.0.0.0, ::), those plus the machine's name, its
    full name and their addresses; else ``host`` itself and, for a name, its addresses."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or (address is not None and address.is_loopback):
        return list(LOOPBACK_HOSTS)
    names = [host]
    if address is not None and address.is_unspecified:
        names = LOOPBACK_HOSTS + [socket.gethostname(), socket.getfqdn()]
    for name in list(names):
        try:
            names += [info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)]
        except OSError:
            pass
    return list(dict.fromkeys(n.lower() for n in names if n))


def host_name(value: str) -> str:
    """A Host header's name without its port: ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: a request whose Host is not in ``allowed_hosts`` (``"*"``: any) is
    answered 400 (JSON); every response gets ``SECURITY_HEADERS``."""

    def __init__(self, app, allowed_hosts: list[str]):
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed = {host_name(h) for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.any_host or host_name(host) in self.allowed:
            return await self.app(scope, receive, send_with_headers)
        body = json.dumps({"error": {"code": "host_not_allowed", "message": (
            f"Host {host[:100]!r} is not one of this service's names (crnn-ocr serve --allowed-hosts)")}}).encode()
        await send_with_headers({"type": "http.response.start", "status": 400,
                                 "headers": [(b"content-type", b"application/json"),
                                             (b"content-length", str(len(body)).encode())]})
        await send_with_headers({"type": "http.response.body", "body": body})
