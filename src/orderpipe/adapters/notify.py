"""Notifiers: a structured log line always, a webhook POST when configured."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import threading
import time
from typing import Any

import httpx

from orderpipe.logs import log_event
from orderpipe.ports import Notification

__all__ = ["LogNotifier", "WebhookNotifier"]


class LogNotifier:
    def notify(self, notification: Notification) -> None:
        level = logging.INFO if notification.event in ("accepted", "duplicate") else logging.WARNING
        log_event(f"batch.{notification.event}", level, **dataclasses.asdict(notification))


class _Cutoff:
    """Shuts the connection down when the deadline passes.

    httpx timeouts bound each read, not the request: a receiver that trickles a byte now and
    then would hold the caller indefinitely. The socket comes from httpcore's trace extension.
    """

    def __init__(self, end: float) -> None:
        self.fired = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.timer = threading.Timer(max(0.0, end - time.monotonic()), self.fire)
        self.timer.daemon = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with self.lock:
                    self.sockets.append(sock)
                    late = self.fired
                if late:  # connected just as the deadline passed
                    _shut(sock)

    def fire(self) -> None:
        with self.lock:
            self.fired = True
            sockets = list(self.sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake a blocked read or write (closing the file descriptor alone would not)."""
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


class WebhookNotifier:
    """POSTs the notification as JSON; retries with backoff, then logs and gives up.

    `deadline` bounds the whole notification (every attempt, read and backoff): the caller is
    a run or a worker that must not wait on a slow receiver. Each attempt's timeout shrinks to
    the time left, and no retry starts once the deadline is near.
    """

    def __init__(
        self, url: str, *, attempts: int = 4, backoff: float = 0.5, timeout: float = 5.0, deadline: float = 10.0
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.deadline = deadline
        self.log = LogNotifier()

    def _post(self, payload: dict[str, Any], end: float) -> httpx.Response:
        cutoff = _Cutoff(end)
        cutoff.timer.start()
        try:
            with httpx.Client(timeout=max(0.0, min(self.timeout, end - time.monotonic()))) as client:
                return client.post(self.url, json=payload, extensions={"trace": cutoff.trace})
        except httpx.HTTPError as exc:
            if cutoff.fired:
                raise httpx.TimeoutException(f"no answer within the {self.deadline:g}s deadline") from exc
            raise
        finally:
            cutoff.timer.cancel()

    def notify(self, notification: Notification) -> None:
        self.log.notify(notification)
        payload = dataclasses.asdict(notification)
        end = time.monotonic() + self.deadline
        error = ""
        made = 0
        while made < self.attempts and time.monotonic() < end:
            made += 1
            try:
                response = self._post(payload, end)
                if response.status_code < 300:
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            pause = self.backoff * 2 ** (made - 1)
            if made < self.attempts and time.monotonic() + pause < end:
                time.sleep(pause)
            else:
                break
        log_event(
            "notify.webhook_failed",
            logging.ERROR,
            url=self.url,
            attempts=made,
            deadline=self.deadline,
            error=error,
            file=notification.file,
            batch_id=notification.batch_id,
            hint="the batch itself is processed; check the webhook receiver",
        )
