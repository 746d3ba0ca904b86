"""`orderpipe serve`: the API and the dashboard over the home's SQLite (or, with the aws
backend, DynamoDB), on uvicorn.

Loopback by default. Any other address needs a token (anyone who can reach the port could
read the KPIs otherwise); the Host header is checked either way. On a wildcard address
(0.0.0.0, ::) the start-up message lists the addresses that answer: this machine's own
(accepted as Host without --allow-host, since an address cannot be rebound); a DNS name still
needs --allow-host. Every value that will have to match a header later (the token, the
--allow-host names, the --cors-origin origins) is checked here, at start, so that a value
that could never match is an error (exit 2) and not a server that refuses everyone.

Connections are bounded in time and number (connections.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from orderpipe.bootstrap import Reader, open_reader
from orderpipe.config import Settings
from orderpipe.errors import UsageError
from orderpipe.web.app import create_app
from orderpipe.web.connections import REQUEST_TIMEOUT, SEND_TIMEOUT, bounded_protocol
from orderpipe.web.security import LOOPBACK_HOSTS, MIN_TOKEN_CHARS, Guard, token_problem

__all__ = [
    "MIN_TOKEN_CHARS",
    "WILDCARDS",
    "Limits",
    "allowed_host",
    "check_binding",
    "cors_origin",
    "limits",
    "listen",
    "own_addresses",
    "serve",
    "server_config",
]

WILDCARDS = frozenset({"0.0.0.0", "::"})
MAX_CONNECTIONS = 1000
FILES_RESERVED = 48  # files beside the connections: the database and its WAL, a static file per worker thread
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_host(option: str, value: str) -> str:
    """`value` as the Host check compares it: lower case, an IPv6 address without brackets, a
    non-ASCII name in its xn-- form (what browsers send). A URL or a port could never match."""
    text = value.strip().lower().rstrip(".")
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    try:
        name = bare.encode("idna").decode("ascii")
    except UnicodeError:
        name = bare
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{option} {value!r} is not a host name or an IP address: give it as the browser's address bar "
            "shows it, without http://, port or path (e.g. kpis.example.com or 192.168.1.20)"
        )
    return name


def cors_origin(value: str) -> str:
    """`value` as a browser's Origin header writes it (scheme://host[:port], lower case, no
    default port, nothing after), since the CORS check compares the two exactly."""
    problem = f"--cors-origin {value!r} is not an origin: give scheme://host[:port], e.g. https://reports.example"
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        raise UsageError(problem) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise UsageError(problem)
    host = allowed_host("--cors-origin", parts.hostname)
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def check_binding(host: str, token: str | None, allow_hosts: Sequence[str], cors_origins: Sequence[str] = ()) -> Guard:
    """The guard for a bind address: a non-loopback one needs a token; every value checked
    (the token's rules are security.token_problem's, for --token and $ORDERPIPE_SERVE_TOKEN alike)."""
    problem = None if token is None else token_problem(token)
    if problem is not None:
        raise UsageError(problem)
    if not _loopback(host) and token is None:
        raise UsageError(
            f"--host {host} would let anyone who reaches this machine read the KPIs: give a token "
            "(--token or $ORDERPIPE_SERVE_TOKEN), or keep the default 127.0.0.1"
        )
    hosts = set(LOOPBACK_HOSTS) | {allowed_host("--allow-host", h) for h in allow_hosts}
    if host not in WILDCARDS:
        hosts.add(allowed_host("--host", host))
    return Guard(frozenset(hosts), token, tuple(cors_origin(o) for o in cors_origins))


@dataclass(frozen=True, slots=True)
class Limits:
    """`connections`: kept open at most; `backlog`: connections the kernel holds until they are
    accepted, which is also how many asyncio accepts in one turn of its loop."""

    connections: int
    backlog: int


def limits() -> Limits:
    """Limits that keep every socket within the process's open-file limit. Of the files
    available (the soft limit, less those open now, less FILES_RESERVED), 3 backlogs are kept
    for sockets in flight: asyncio accepts up to a backlog a turn, the protocol sees each one
    two turns later, and the connection it closes to make room is closed a turn after that.
    Past the limit the accept itself would fail, and asyncio would accept no one for a second.
    Under a limit of 256: a backlog of 25 and 125 connections (8 files were open at start)."""
    available = MAX_CONNECTIONS * 2
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            in_use = len(os.listdir("/dev/fd")) if os.path.isdir("/dev/fd") else FILES_RESERVED
            available = soft - in_use - FILES_RESERVED
    except (ImportError, OSError, ValueError):
        pass
    backlog = max(8, min(128, available // 8))
    return Limits(max(8, min(MAX_CONNECTIONS, available - 3 * backlog)), backlog)


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket (port 0 picks a free one): connections wait in its backlog from now
    on, before uvicorn's loop runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    return sock


def server_config(
    app: Any,
    access_log: bool,
    bounds: Limits,
    request_timeout: float = REQUEST_TIMEOUT,
    send_timeout: float = SEND_TIMEOUT,
) -> Any:
    """uvicorn's settings for `serve`: our bounded h11 protocol (whatever else is installed),
    keep-alive 5 s between requests, request heads of at most 16 KiB (h11's default, said
    here). uvicorn's `limit_concurrency` is left off: it answers 503 to every request once that
    many connections are open, so stalled clients would still lock everyone out."""
    import uvicorn

    protocol = bounded_protocol(bounds.connections, request_timeout, send_timeout)
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        http=protocol,
        backlog=bounds.backlog,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
    )


def own_addresses(ipv4: bool, ipv6: bool) -> list[str]:
    """This machine's addresses another machine could use (no loopback, no link-local), for the
    start-up message: on Linux each interface's IPv4 address and /proc/net/if_inet6; anywhere,
    what the host name resolves to. Best effort: the Host check takes any address of this
    machine, listed or not."""
    found: set[Address] = set()
    if sys.platform == "linux":
        found |= _linux_ipv4() if ipv4 else set()
        found |= _linux_ipv6() if ipv6 else set()
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
    except OSError:
        infos = []
    for *_, sockaddr in infos:
        found.add(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
    usable = [
        a
        for a in found
        if not (a.is_loopback or a.is_link_local or a.is_unspecified) and (ipv4 if a.version == 4 else ipv6)
    ]
    return [str(a) for a in sorted(usable, key=lambda a: (a.version, int(a)))]


def _linux_ipv4() -> set[Address]:
    import fcntl
    import struct

    found: set[Address] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:  # SIOCGIFADDR: the interface's IPv4 address
                answer = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on it
            found.add(ipaddress.IPv4Address(answer[20:24]))
    return found


def _linux_ipv6() -> set[Address]:
    try:
        with open("/proc/net/if_inet6") as table:
            return {ipaddress.IPv6Address(int(line.split()[0], 16)) for line in table if line.strip()}
    except (OSError, ValueError, IndexError):
        return set()


def _url(address: str, port: int) -> str:
    return f"http://[{address}]:{port}/" if ":" in address else f"http://{address}:{port}/"


def where(sock: socket.socket, host: str, guard: Guard) -> tuple[str, list[str]]:
    """The URL to show first (one that works from this machine) and, on a wildcard address,
    the others that work: this machine's addresses and the --allow-host names."""
    port = sock.getsockname()[1]
    if host not in WILDCARDS:
        return _url(host, port), []
    dual = host == "::" and not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    ipv4, ipv6 = host == "0.0.0.0" or dual, host == "::"
    names = sorted((guard.allowed_hosts or frozenset()) - LOOPBACK_HOSTS)
    others = [*own_addresses(ipv4, ipv6), *names]
    return _url("127.0.0.1" if ipv4 else "::1", port), [_url(a, port) for a in dict.fromkeys(others)]


#: The signals that stop `serve` (uvicorn's own handlers take both).
STOPS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class HeldStops:
    """Stops that came before the server could take them, and the handlers they were kept from."""

    previous: dict[signal.Signals, Any]
    held: list[int]


def hold_stops() -> HeldStops:
    """From here on a Ctrl-C or SIGTERM is noted, not acted on, until the server runs: one in the
    instant before the event loop runs would end Python half-way through making it (a traceback
    and a never-awaited warning beside "stopped serving")."""
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda sig, frame: held.append(sig)) for sig in STOPS}
    return HeldStops(previous, held)


def _run_until_stopped(config: Any, sock: socket.socket, stops: HeldStops) -> None:
    """uvicorn's server on `sock`; a stop held back while it started is handed to it once its
    handlers are in place (it shuts down cleanly, then raises the stop again, as uvicorn does)."""
    import uvicorn

    class StoppableServer(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            for sig, handler in stops.previous.items():
                signal.signal(sig, handler)  # what the server puts back when it ends
            with super().capture_signals():
                for held in stops.held:
                    self.handle_exit(held, None)
                yield

    try:
        StoppableServer(config).run(sockets=[sock])
    finally:
        for sig, handler in stops.previous.items():
            if signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)


def serve(
    settings: Settings,
    host: str,
    port: int,
    guard: Guard,
    announce: Callable[[str], None],
    access_log: bool,
) -> None:
    """Bind first (port 0 picks a free one), say the URLs, then serve until Ctrl-C or SIGTERM."""

    first = open_reader(settings)  # refuses a local home that is not there, before binding
    if settings.backend == "aws":

        def source() -> Reader:
            return first  # one set of DynamoDB clients for every request
    else:
        first.close()

        def source() -> Reader:
            return open_reader(settings)  # a fresh read-only connection per request: never stale

    app = create_app(source, guard=guard)
    stops = hold_stops()
    bounds = limits()
    sock = listen(host, port, bounds.backlog)
    url, others = where(sock, host, guard)
    if host in WILDCARDS:
        announce(f"serving the dashboard of {settings.home} on every address of this machine (Ctrl-C stops): "
                 + " ".join([url, *others]))  # fmt: skip
        announce("  from elsewhere open one of these once with ?token=<the token>; a DNS name that leads here "
                 "also needs --allow-host NAME (addresses need none)")  # fmt: skip
    else:
        announce(f"serving the dashboard of {settings.home} at {url} (Ctrl-C stops)")
    _run_until_stopped(server_config(app, access_log, bounds), sock, stops)
