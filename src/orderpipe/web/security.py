"""What every request passes before the app sees it, and what every answer carries.

- GET and HEAD only (OPTIONS too when CORS is configured, for preflights): the API only reads.
- The Host header must name an allowed host, or be the IP address the connection came in on: a
  page on another site whose name resolves to this machine (DNS rebinding) is refused. An IP
  address cannot be rebound, so the server's own address, however it was reached, is fine.
- With a token, every request needs it: `Authorization: Bearer TOKEN`, or the cookie that
  opening the page once as `/?token=TOKEN` sets (HttpOnly, SameSite=Strict); compared in
  constant time. A token travels in a URL, a cookie and a header, so it may only use the
  characters all three carry unchanged (TOKEN_CHARS): a '+' in a URL reads as a space, a ';'
  ends a cookie, and a header cannot carry a character outside Latin-1 at all.
- Every answer: CSP `default-src 'self'` (the page loads nothing from elsewhere; it connects
  only to itself and, when it signs its user in, to the sign-in service), no framing, no
  sniffing, no referrer.
- No CORS header unless origins are configured.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import string
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "MIN_TOKEN_CHARS", "TOKEN_CHARS", "Guard", "guarded", "token_problem"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "orderpipe_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MIN_TOKEN_CHARS = 16
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~")  # a URL's unreserved characters
TOKEN_RULE = "letters A-Z a-z, digits 0-9 and - . _ ~"
POLICY = "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True, slots=True)
class Guard:
    """`allowed_hosts` None: any Host (behind API Gateway, which routes by its own name).
    `connect_to`: origins the page may send requests to besides its own."""

    allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    connect_to: tuple[str, ...] = ()

    @property
    def policy(self) -> str:
        """The Content-Security-Policy of every answer."""
        if not self.connect_to:
            return POLICY
        return f"{POLICY}; connect-src 'self' {' '.join(self.connect_to)}"

    def __post_init__(self) -> None:
        problem = None if self.token is None else token_problem(self.token)
        if problem is not None:
            raise ValueError(problem)


def token_problem(token: str) -> str | None:
    """Why `token` cannot work, or None: every way in (`/?token=`, the cookie, the header)
    must carry it unchanged, and it must be long enough not to be guessed."""
    if len(token) < MIN_TOKEN_CHARS:
        return f"the token must be at least {MIN_TOKEN_CHARS} characters (try: openssl rand -hex 16)"
    others = sorted(set(token) - TOKEN_CHARS)
    if others:
        shown = " ".join(repr(c) for c in others[:8]) + (" …" if len(others) > 8 else "")
        return (f"the token may only use {TOKEN_RULE}, which a URL, a cookie and an HTTP header all carry "
                f"unchanged; it has {shown} (try: openssl rand -hex 16)")  # fmt: skip
    return None


def _host_name(value: str) -> str:
    """`[::1]:8000` → `::1`, `Example.com.:80` → `example.com`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return (value.rsplit(":", 1)[0] if value.count(":") == 1 else value).rstrip(".")


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address (an IPv4-mapped IPv6 one as its IPv4 address), or None for a name."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host_allowed(guard: Guard, host: str, scope: Scope) -> bool:
    """An allowed name, or the very IP address the connection arrived at: a rebinding page's
    requests carry its own name, never an address, so any address of this machine is safe."""
    if guard.allowed_hosts is None or host in guard.allowed_hosts:
        return True
    address, server = _ip(host), scope.get("server")
    return address is not None and server is not None and address == _ip(str(server[0]))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def guarded(app: ASGIApp, guard: Guard) -> ASGIApp:
    """`app` behind the rules above."""

    async def refuse(send: Send, status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    always = [(b"content-security-policy", guard.policy.encode("latin-1")), *HEADERS]

    async def guarded_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        origin = headers.get("origin")
        cors = origin is not None and origin in guard.cors_origins

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(always)
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
        if not _host_allowed(guard, _host_name(headers.get("host", "")), scope):
            await refuse(send_with_headers, 400, "this host name is not served here: start orderpipe serve with "
                         "--allow-host NAME to answer it, or use this machine's IP address")  # fmt: skip
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
