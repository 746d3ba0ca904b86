"""`orderpipe serve`: the API and the dashboard over the home's SQLite (or, with the aws
backend, DynamoDB), on uvicorn.

Loopback by default. Any other address needs a token (anyone who can reach the port could
read the KPIs otherwise); the Host header is checked either way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

from orderpipe.bootstrap import Reader, open_reader
from orderpipe.config import Settings
from orderpipe.errors import UsageError
from orderpipe.web.app import create_app
from orderpipe.web.security import LOOPBACK_HOSTS, Guard

__all__ = ["MIN_TOKEN_CHARS", "check_binding", "serve"]

MIN_TOKEN_CHARS = 16


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, allow_hosts: Sequence[str]) -> Guard:
    """The guard for a bind address: a non-loopback one needs a token of MIN_TOKEN_CHARS or more."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UsageError(f"the token must be at least {MIN_TOKEN_CHARS} characters (try: openssl rand -hex 16)")
    if not _loopback(host) and token is None:
        raise UsageError(
            f"--host {host} would let anyone who reaches this machine read the KPIs: give a token "
            "(--token or $ORDERPIPE_SERVE_TOKEN), or keep the default 127.0.0.1"
        )
    hosts = set(LOOPBACK_HOSTS) | {h.lower() for h in allow_hosts}
    if not _loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.add(host.lower())
    return Guard(allowed_hosts=frozenset(hosts), token=token)


def serve(
    settings: Settings,
    host: str,
    port: int,
    guard: Guard,
    cors_origins: Sequence[str],
    announce: Callable[[str], None],
    access_log: bool,
) -> None:
    """Bind first (port 0 picks a free one), say the URL, then serve until Ctrl-C or SIGTERM."""
    import uvicorn

    first = open_reader(settings)  # refuses a local home that is not there, before binding
    if settings.backend == "aws":

        def source() -> Reader:
            return first  # one set of DynamoDB clients for every request
    else:
        first.close()

        def source() -> Reader:
            return open_reader(settings)  # a fresh read-only connection per request: never stale

    guard = Guard(guard.allowed_hosts, guard.token, tuple(cors_origins))
    app = create_app(source, guard=guard)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)  # connections wait in the backlog from now on, before uvicorn's loop runs
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    announce(f"serving the dashboard of {settings.home} at http://{shown}:{bound}/ (Ctrl-C stops)")
    config = uvicorn.Config(
        app, log_level="warning", access_log=access_log, server_header=False, proxy_headers=False, lifespan="off"
    )
    uvicorn.Server(config).run(sockets=[sock])
