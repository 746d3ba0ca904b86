"""Notifiers: a structured log line always, a webhook POST when configured."""

from __future__ import annotations

import dataclasses
import logging
import time

import httpx

from orderpipe.logs import log_event
from orderpipe.ports import Notification

__all__ = ["LogNotifier", "WebhookNotifier"]


class LogNotifier:
    def notify(self, notification: Notification) -> None:
        level = logging.INFO if notification.event in ("accepted", "duplicate") else logging.WARNING
        log_event(f"batch.{notification.event}", level, **dataclasses.asdict(notification))


class WebhookNotifier:
    """POSTs the notification as JSON; retries with backoff, then logs and gives up."""

    def __init__(self, url: str, *, attempts: int = 4, backoff: float = 0.5, timeout: float = 5.0) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.log = LogNotifier()

    def notify(self, notification: Notification) -> None:
        self.log.notify(notification)
        payload = dataclasses.asdict(notification)
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = httpx.post(self.url, json=payload, timeout=self.timeout)
                if response.status_code < 300:
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        log_event(
            "notify.webhook_failed",
            logging.ERROR,
            url=self.url,
            attempts=self.attempts,
            error=error,
            file=notification.file,
            batch_id=notification.batch_id,
            hint="the batch itself is processed; check the webhook receiver",
        )
