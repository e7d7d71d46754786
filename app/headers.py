"""Security headers on every HTTP response: a CSP with no third-party hosts, nosniff, no framing."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The pages load nothing from another host: scripts, styles and images are ours; data: and blob: images and
# media are what the pages make themselves (previews of a chosen file, webcam snapshots). connect-src 'self'
# also covers the same-origin WebSocket (ws: / wss: of our host) in CSP Level 3 browsers.
PAGE_POLICY = {
    "default-src": "'self'",
    "img-src": "'self' data: blob:",
    "media-src": "'self' blob:",
    "connect-src": "'self'",
    "style-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}

# For bytes a user uploaded: even if a browser were talked into rendering them as a document, they run nothing,
# load nothing and get an opaque origin, never ours.
UPLOAD_CSP = "sandbox; default-src 'none'"


def csp(**overrides: str) -> str:
    """The page policy as a header value; overrides take directive names with '_' for '-'."""
    policy = {**PAGE_POLICY, **{name.replace("_", "-"): value for name, value in overrides.items()}}
    return "; ".join(f"{name} {value}" for name, value in policy.items())


DEFAULT_HEADERS = {
    "Content-Security-Policy": csp(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds each default header that the response does not set itself.

    A route that needs another policy (an uploaded image, the API docs) sets its own header and keeps it.
    """

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in (headers or DEFAULT_HEADERS).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
