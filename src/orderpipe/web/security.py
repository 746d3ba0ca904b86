"""What every request passes before the app sees it, and what every answer carries.

- GET and HEAD only (OPTIONS too when CORS is configured, for preflights): the API only reads.
- The Host header must name an allowed host: a page on another site whose name resolves to
  127.0.0.1 (DNS rebinding) is refused.
- With a token, every request needs it: `Authorization: Bearer TOKEN`, or the cookie that
  opening the page once as `/?token=TOKEN` sets (HttpOnly, SameSite=Strict); compared in
  constant time.
- Every answer: CSP `default-src 'self'` (the page loads nothing from elsewhere), no framing,
  no sniffing, no referrer.
- No CORS header unless origins are configured.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "Guard", "guarded"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "orderpipe_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
HEADERS = [
    (b"content-security-policy", b"default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True, slots=True)
class Guard:
    """`allowed_hosts` None: any Host (behind API Gateway, which routes by its own name)."""

    allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS
    token: str | None = None
    cors_origins: tuple[str, ...] = ()


def _host_name(value: str) -> str:
    """`[::1]:8000` → `::1`, `Example.com:80` → `example.com`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def guarded(app: ASGIApp, guard: Guard) -> ASGIApp:
    """`app` behind the rules above."""

    async def refuse(send: Send, status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def guarded_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get("origin")
        cors = origin is not None and origin in guard.cors_origins

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(HEADERS)
                if cors:
                    extra += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]  # type: ignore[union-attr]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        method = scope["method"]
        if method == "OPTIONS" and cors:
            allow = [(b"access-control-allow-methods", b"GET, HEAD"),
                     (b"access-control-allow-headers", b"Authorization, If-None-Match")]  # fmt: skip
            await send_with_headers({"type": "http.response.start", "status": 204, "headers": allow})
            await send_with_headers({"type": "http.response.body", "body": b""})
            return
        if method not in ("GET", "HEAD"):
            await refuse(send_with_headers, 405, f"{method} is not allowed: this API only reads (GET, HEAD)",
                         [(b"allow", b"GET, HEAD")])  # fmt: skip
            return
        if guard.allowed_hosts is not None and _host_name(headers.get("host", "")) not in guard.allowed_hosts:
            await refuse(send_with_headers, 400, "this host name is not served here (see --allow-host)")
            return
        if guard.token is not None:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get("token")
            if given is not None and scope["path"] == "/" and hmac.compare_digest(given.encode(), guard.token.encode()):
                rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
                cookie = f"{COOKIE}={guard.token}; HttpOnly; SameSite=Strict; Path=/"
                location = "/" + (f"?{rest}" if rest else "")
                await refuse(send_with_headers, 303, "signed in",
                             [(b"location", location.encode()), (b"set-cookie", cookie.encode("latin-1"))])  # fmt: skip
                return
            if not _has_token(headers, guard.token):
                await refuse(send_with_headers, 401, "a token is needed: open /?token=TOKEN once, or send "
                             "Authorization: Bearer TOKEN", [(b"www-authenticate", b"Bearer")])  # fmt: skip
                return
        await app(scope, receive, send_with_headers)

    return guarded_app


def _has_token(headers: dict[str, str], token: str) -> bool:
    expected = token.encode()
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), expected):
        return True
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is simply no token
        return False
    morsel = cookie.get(COOKIE)
    return morsel is not None and hmac.compare_digest(morsel.value.encode(), expected)
