"""Bounds on what a client can hold of `orderpipe serve`: time and connections.

uvicorn 0.54 has no limit on the time a client takes to send its request: its keep-alive
timeout only runs between requests and stops at the first byte, and a new connection has no
timer at all. So a client that sends half a request line and stalls holds a connection, and an
open file, for ever; a few hundred of them use up the process's open files and `serve` accepts
no one else. Its `limit_concurrency` does not help: it only answers 503 to new requests once
that many connections are open, slow ones included.

This protocol is uvicorn's h11 protocol with three rules added:

- **A request must arrive whole within `request_timeout`** of the connection opening, or of the
  end of the previous answer on it, however slowly its bytes trickle in; else 408 and close.
- **An answer the client does not read** (the write buffer stays full) for `send_timeout` is
  dropped, and the connection with it.
- **At most `max_connections` are open** (set below the open-file limit): one more arriving
  closes the connection that has waited longest for its request, since a request that is being
  answered must not be cut; when every connection is being answered, the new one gets a 503.

Request heads are bounded in size by h11 (16 KiB, uvicorn's `h11_max_incomplete_event_size`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

__all__ = ["REQUEST_TIMEOUT", "SEND_TIMEOUT", "BoundedH11Protocol", "bounded_protocol"]

REQUEST_TIMEOUT = 10.0  # a browser or curl sends a request in milliseconds, even over a slow link
SEND_TIMEOUT = 30.0  # reading nothing at all for this long: gone (a slow reader restarts it with each read)
_UNREAD = 64 * 1024  # asyncio's write buffer high-water mark: above it, the client is not keeping up


def _raw_answer(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP answer written before (or without) a request to answer: h11 cannot send one."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class BoundedH11Protocol(H11Protocol):
    """One connection; see the module's docstring. `waiting_since` is the loop time at which it
    began waiting for a request (None while a whole request is being answered)."""

    request_timeout = REQUEST_TIMEOUT
    send_timeout = SEND_TIMEOUT
    max_connections = 1000

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.waiting_since: float | None = None
        self._request_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._make_room():
            why = "every connection this server can hold is being answered: try again in a moment"
            transport.write(_raw_answer(503, "Service Unavailable", why))
            transport.close()
            return
        self._wait_for_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.DONE:  # the whole request is here: its answer is the app's time
            self._stop(self._request_timer)
            self.waiting_since = self._request_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start answering a pipelined request already whole
        if not self.transport.is_closing() and self.conn.their_state is not h11.DONE:
            self._wait_for_request()  # the next request on this connection has the same time

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stop(self._send_timer)
        self._send_timer = self.loop.call_later(self.send_timeout, self._unread)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stop(self._send_timer)
        self._send_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop(self._request_timer)
        self._stop(self._send_timer)
        self.waiting_since = None
        super().connection_lost(exc)

    def _wait_for_request(self) -> None:
        self._stop(self._request_timer)
        self.waiting_since = self.loop.time()
        self._request_timer = self.loop.call_later(self.request_timeout, self._too_slow)

    def _too_slow(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no answer under way: say why
            why = f"the request did not arrive whole within {self.request_timeout:g} s: send it at once"
            self.transport.write(_raw_answer(408, "Request Timeout", why))
        self._let_go()

    def _unread(self) -> None:
        self.transport.abort()  # close() would wait for the unread buffer to drain

    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its request; False if none waits."""
        waiting = [c for c in self.connections if isinstance(c, BoundedH11Protocol) and c.waiting_since is not None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
        oldest.waiting_since = None
        oldest._let_go()
        return True

    def _let_go(self) -> None:
        """Close: at once when a previous answer is still unread (close() would wait for it)."""
        if self.transport.get_write_buffer_size() > _UNREAD:
            self.transport.abort()
        else:
            self.transport.close()

    @staticmethod
    def _stop(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def bounded_protocol(
    max_connections: int, request_timeout: float = REQUEST_TIMEOUT, send_timeout: float = SEND_TIMEOUT
) -> type[BoundedH11Protocol]:
    """The protocol class for one server (uvicorn builds one instance per connection)."""
    settings = {"max_connections": max_connections, "request_timeout": request_timeout, "send_timeout": send_timeout}
    return type("BoundedH11Protocol", (BoundedH11Protocol,), settings)
