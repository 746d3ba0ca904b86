"""Clients that stall cannot lock `orderpipe serve` up: a request must arrive whole in time, an
answer left unread is dropped, and at the connection cap a new client pushes out the one that
has waited longest for its request. Real servers on 127.0.0.1 (the real command under a low
open-file limit, or uvicorn in a thread with serve's own settings and short timeouts) and real
sockets that send half a request and stop; nothing leaves the loopback interface."""

from __future__ import annotations

import datetime as dt
import re
import resource
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from orderpipe.bootstrap import open_pipeline, open_reader
from orderpipe.config import load_settings
from orderpipe.web.app import create_app
from orderpipe.web.connections import REQUEST_TIMEOUT
from orderpipe.web.serve import Limits
from tests.conftest import order, run_file, write
from tests.web.conftest import ORDERPIPE, fill, running

OPEN_FILES = 256  # the open-file limit the stalled clients outnumber
STALLED = 300
CATEGORIES = ["Electronics", "Books", "Clothing", "Home", "Toys", "Sports", "Beauty", "Grocery"]
BIG = "/api/kpis/category?from=2016-01-01&to=2026-01-07&money=string"  # ten years of 8 categories: ~4.6 MB


@pytest.fixture(scope="module")
def big_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with an order for every category on every day of ten years: large answers."""
    tmp = tmp_path_factory.mktemp("big")
    start = dt.date(2016, 1, 1)
    rows = [
        order(f"O{day}-{n}", "C1", (start + dt.timedelta(days=day)).isoformat(), category)
        for day in range(3660)
        for n, category in enumerate(CATEGORIES)
    ]
    run_file(open_pipeline(load_settings(tmp / "home", environ={})), write(tmp / "decade.csv", rows))
    return tmp / "home"


@contextmanager
def bounded(home: Path, max_connections: int, request_timeout: float, send_timeout: float) -> Iterator[int]:
    """serve's own socket and uvicorn settings, with the bounds given, in a thread; yields the port."""
    settings = load_settings(home, environ={})
    app = create_app(lambda: open_reader(settings))
    with running(app, Limits(max_connections, backlog=32), request_timeout, send_timeout) as url:
        yield int(url.rpartition(":")[2])


def stalled(port: int, sent: bytes = b"GET /api/vers") -> socket.socket:
    """A client that sends the start of a request and then nothing."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    with suppress(OSError):  # already let go
        client.sendall(sent)
    return client


def burst(port: int, count: int) -> list[socket.socket]:
    """`count` clients connecting all at once, each sending half a request line as soon as it can."""
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        clients.append(client)
    pending, deadline = set(clients), time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for client in select.select([], list(pending), [], 1)[1]:
            with suppress(OSError):  # refused or already let go: counted below as ended
                client.send(b"GET /api/vers")
            pending.discard(client)
    assert not pending, f"{len(pending)} clients could not connect in 30 s"
    for client in clients:
        client.setblocking(True)
    return clients


def trickle(client: socket.socket, data: bytes, every: float, within: float) -> bytes | None:
    """Send `data` a byte every `every` s, reading all the while: what the server sent before it
    closed the connection, or None if it was still open after `within` s."""
    received = b""
    deadline = time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        if select.select([client], [], [], min(left, every))[0]:
            try:
                chunk = client.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
        elif data:
            try:
                client.sendall(data[:1])
            except OSError:
                return received
            data = data[1:]
    return None


def ended(client: socket.socket, within: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it was still open after `within` s."""
    return trickle(client, b"", 0.1, within)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def answered(port: int, timeout: float = 5) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=timeout)


@contextmanager
def low_limit_server(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """The real `orderpipe serve` under an open-file limit of OPEN_FILES; yields its port and,
    once it has stopped, its output in the list."""
    home = tmp_path / "home"
    fill(home, {}, tmp_path)

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))

    process = subprocess.Popen(
        [ORDERPIPE, "--home", str(home), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=low_limit,
    )  # fmt: skip
    assert process.stdout is not None
    output: list[str] = []
    try:
        found = re.search(r"127\.0\.0\.1:(\d+)/", process.stdout.readline())
        assert found, "no URL announced"
        yield int(found.group(1)), output
    finally:
        stop(process)
        output.append(process.stdout.read())


def test_stalled_clients_past_the_open_file_limit_do_not_lock_others_out(tmp_path: Path) -> None:
    with low_limit_server(tmp_path) as (port, output), ExitStack() as stack:
        clients = [stack.enter_context(stalled(port)) for _ in range(STALLED)]
        started = time.monotonic()
        response = answered(port)
        assert response.status_code == 200 and time.monotonic() - started < 5
        endings = [ended(client, REQUEST_TIMEOUT + 5 - (time.monotonic() - started)) for client in clients]
        assert all(e is not None for e in endings), f"{endings.count(None)} stalled clients still held"
        timed_out = [e for e in endings if e]
        assert timed_out and all(e.startswith(b"HTTP/1.1 408 ") for e in timed_out), timed_out[:1]
        assert answered(port).status_code == 200
    assert "Too many open files" not in output[0], output[0][-2000:]  # the cap kept sockets within the limit


def test_a_burst_of_stalled_clients_does_not_lock_others_out(tmp_path: Path) -> None:
    """All at once: the ones the kernel still holds unaccepted are not timed yet, so only the
    answer to a normal client is checked, and that the server never ran out of files."""
    with low_limit_server(tmp_path) as (port, output), ExitStack() as stack:
        for client in burst(port, STALLED):
            stack.enter_context(client)
        started = time.monotonic()
        assert answered(port).status_code == 200 and time.monotonic() - started < 5
    assert "Too many open files" not in output[0], output[0][-2000:]


def test_a_request_must_arrive_whole_in_time_however_it_trickles(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fill(home, {}, tmp_path)
    with bounded(home, max_connections=50, request_timeout=1.0, send_timeout=30) as port:
        head = b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        started = time.monotonic()
        ending = trickle(stalled(port, b""), head, 0.1, 3)  # a byte every 0.1 s: never stalls, never ends
        assert ending is not None and ending.startswith(b"HTTP/1.1 408 "), ending
        assert b'"error"' in ending and time.monotonic() - started < 3

        again = stalled(port, head + b"\r\n")  # one whole request answered, then half of the next one
        time.sleep(0.5)
        again.sendall(head)
        ending = ended(again, 3)
        assert ending is not None and ending.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in ending, ending

        body = stalled(port, head + b"Content-Length: 100\r\n\r\n")
        ending = trickle(body, b"x" * 100, 0.1, 3)  # answered at once (a GET has no use for it), the body trickles
        assert ending is not None and ending.startswith(b"HTTP/1.1 200 "), ending
        assert answered(port).status_code == 200


def test_an_answer_left_unread_is_dropped(big_home: Path) -> None:
    with bounded(big_home, max_connections=50, request_timeout=60, send_timeout=1.0) as port:
        whole = len(httpx.get(f"http://127.0.0.1:{port}{BIG}", timeout=30).content)
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.connect(("127.0.0.1", port))
        request = f"GET {BIG} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        reader.sendall(request * 4)  # four answers: more than the kernel's buffers hold
        time.sleep(3)  # reads nothing for longer than send_timeout
        ending = ended(reader, 30)
        reader.close()
    assert ending is not None, "the connection was kept"
    assert len(ending) < 4 * whole, "every answer was kept for the client that did not read"


def test_at_the_cap_a_new_client_pushes_out_the_longest_waiting(big_home: Path) -> None:
    with bounded(big_home, max_connections=4, request_timeout=60, send_timeout=60) as port, ExitStack() as stack:
        clients = []
        for _ in range(4):
            clients.append(stack.enter_context(stalled(port)))
            time.sleep(0.05)  # in this order
        assert answered(port).status_code == 200
        assert ended(clients[0], 2) is not None, "the longest waiting was kept"
        assert all(ended(c, 0.2) is None for c in clients[1:]), "another one was closed instead"

        busy = []  # connections whose whole request is being answered (the answer is not read)
        for client in clients[1:]:
            client.close()
        for _ in range(4):
            reader = stack.enter_context(socket.socket())
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(("127.0.0.1", port))
            reader.sendall(f"GET {BIG} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() * 4)
            busy.append(reader)
        time.sleep(2)  # each is answering its first request, which is not read
        refused = answered(port)
        assert refused.status_code == 503 and "try again" in refused.json()["error"]
