"""Cross-site request refusal: state-changing requests and WebSocket handshakes must come from our own pages.

A browser tells where a request comes from (`Origin`, else `Referer`, and `Sec-Fetch-Site`); a page on another
site can make a user's browser send a POST or open a WebSocket to us, with the user's cookies or loopback
trust, but it cannot forge those headers. A request with none of them is not from a browser page (a script,
curl): it passes here and is judged by its session or token alone. This holds whatever the login mode.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# The WebSocket scope says ws/wss; the page that opened it has the http/https origin.
WS_SCHEMES = {"ws": "http", "wss": "https"}


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port; None when it is not such an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if not scheme or not host or parts.username is not None or parts.password is not None:
        return None
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origin_list(value: str | Iterable[str]) -> list[str]:
    """Origins as a setting gives them (comma-separated, or a list), normalized; a malformed one is an error."""
    items = value.split(",") if isinstance(value, str) else list(value)
    origins = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        origin = normalize_origin(item)
        if origin is None or urlsplit(item).path not in ("", "/") or urlsplit(item).query:
            raise ValueError(f"{item!r} is not an origin like https://host or http://host:8080")
        origins.append(origin)
    return origins


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def own_origin(scope: Scope) -> str | None:
    """The origin the browser used to reach us: the scope's scheme (uvicorn takes it from X-Forwarded-Proto
    when the proxy is trusted) and the Host header."""
    host = _header(scope, b"host")
    if not host:
        return None
    scheme = scope.get("scheme", "http")
    return normalize_origin(f"{WS_SCHEMES.get(scheme, scheme)}://{host}")


def request_origin(scope: Scope) -> str | None:
    """What the browser says the request comes from: `Origin`, else the origin of `Referer`; None without
    either. `Origin: null` (sandboxed frames, file: pages, some redirects) and junk come back as they are."""
    origin = _header(scope, b"origin")
    if origin is not None:
        return normalize_origin(origin) or origin.strip()
    referer = _header(scope, b"referer")
    if referer is not None:
        return normalize_origin(referer) or referer.strip()
    return None


def foreign_origin(scope: Scope, allowed: frozenset[str]) -> str | None:
    """The origin to refuse this request for, or None when it may pass."""
    origin = request_origin(scope)
    cross_site = (_header(scope, b"sec-fetch-site") or "").strip().lower() == "cross-site"
    if origin is None:
        # No Origin nor Referer: a non-browser client, unless the browser says it comes from another site.
        return "(unknown, Sec-Fetch-Site: cross-site)" if cross_site else None
    if origin in allowed:
        return None
    if origin == own_origin(scope) and not cross_site:
        return None
    return origin


class CrossSiteGuard:
    """Pure ASGI middleware: refuses a cross-site state-changing request (403) or WebSocket (closed)."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(parse_origin_list(allowed_origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        checked = scope["type"] == "websocket" or (scope["type"] == "http" and scope["method"] not in SAFE_METHODS)
        origin = foreign_origin(scope, self.allowed) if checked else None
        if origin is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Closing before accept: the server answers the handshake with 403 and the page sees a close.
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
        else:
            body = json.dumps({"detail": f"cross-site request refused: origin {origin} is not allowed"}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
