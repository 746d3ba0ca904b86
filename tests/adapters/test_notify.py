"""Webhook notifications against a real HTTP server on localhost."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orderpipe.adapters.notify import WebhookNotifier
from orderpipe.bootstrap import open_pipeline
from orderpipe.config import load_settings
from orderpipe.ports import Notification
from tests.conftest import order, run_file, write


class Receiver:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bodies: list[dict[str, object]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.failures > 0:
                    receiver.failures -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_pipeline_posts_success_and_failure(receiver: Receiver, home: Path, tmp_path: Path) -> None:
    pipeline = open_pipeline(load_settings(home, environ={"ORDERPIPE_NOTIFY_WEBHOOK_URL": receiver.url}))
    run_file(pipeline, write(tmp_path / "good.csv", [order("O1")]))
    run_file(pipeline, write(tmp_path / "bad.csv", [order("O2", date="2025-13-01")]))
    assert [(b["event"], b["file"]) for b in receiver.bodies] == [("accepted", "good.csv"), ("rejected", "bad.csv")]
    failure = receiver.bodies[1]
    assert "invalid-date" in str(failure["summary"]) and "line 2" in str(failure["summary"])
    assert failure["details"]["errors"][0]["first"]["line"] == 2  # type: ignore[index]


def test_a_failing_webhook_is_retried() -> None:
    receiver = Receiver(failures=2)
    try:
        WebhookNotifier(receiver.url, backoff=0.01).notify(Notification("accepted", "f.csv", "abc", "ok"))
    finally:
        receiver.server.shutdown()
    assert receiver.attempts == 3
    assert len(receiver.bodies) == 1


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_unreachable_webhook_never_loses_the_batch(home: Path, tmp_path: Path) -> None:
    capture = Capture()
    logging.getLogger("orderpipe").addHandler(capture)
    try:
        pipeline = open_pipeline(load_settings(home, environ={}))
        pipeline.notifier = WebhookNotifier("http://127.0.0.1:9/hook", attempts=2, backoff=0.01)
        outcome = run_file(pipeline, write(tmp_path / "good.csv", [order("O1")]))
    finally:
        logging.getLogger("orderpipe").removeHandler(capture)
    assert outcome.status == "accepted"
    assert pipeline.kpis.daily(None, None)[0]["total_orders"] == 1
    failed = [r for r in capture.records if r.getMessage() == "notify.webhook_failed"]
    assert failed and failed[0].fields["attempts"] == 2  # type: ignore[attr-defined]


class Trickler:
    """A receiver that answers one byte per second (the status line first): every read gets
    a byte long before any per-read timeout, so only a total deadline ends the request."""

    def __init__(self, seconds: int = 15) -> None:
        self.attempts = 0
        trickler = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                trickler.attempts += 1
                self.rfile.read(int(self.headers["Content-Length"]))
                answer = b"HTTP/1.1 204 No Content\r\nX-Slow: " + b"x" * seconds
                try:
                    for byte in answer[:seconds]:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(1)
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_trickling_webhook_is_cut_at_the_total_deadline(home: Path, tmp_path: Path) -> None:
    trickler = Trickler()
    capture = Capture()
    logging.getLogger("orderpipe").addHandler(capture)
    try:
        webhook = WebhookNotifier(trickler.url, attempts=3, backoff=0.1, timeout=5.0, deadline=2.0)
        took: list[float] = []

        class Timed:
            def notify(self, notification: Notification) -> None:
                start = time.monotonic()
                webhook.notify(notification)
                took.append(time.monotonic() - start)

        pipeline = open_pipeline(load_settings(home, environ={}))
        pipeline.notifier = Timed()
        outcome = run_file(pipeline, write(tmp_path / "good.csv", [order("O1")]))
    finally:
        logging.getLogger("orderpipe").removeHandler(capture)
        trickler.server.shutdown()
    assert took and took[0] < 2.0 + 0.5, f"the notification took {took[0]:.1f}s with a 2s deadline"
    failed = [r for r in capture.records if r.getMessage() == "notify.webhook_failed"]
    assert failed and "deadline" in failed[0].fields["error"]  # type: ignore[attr-defined]
    assert outcome.status == "accepted"
    assert pipeline.kpis.daily(None, None)[0]["total_orders"] == 1


def test_a_failing_webhook_never_logs_its_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """The user:password, the path (a hook's id) and the query (?token=) of a webhook URL are
    secrets: the log says where the webhook points, nothing more, in JSON and human lines."""
    from orderpipe.logs import configure_logging

    failing = Receiver(failures=100)
    port = failing.server.server_address[1]
    url = f"http://user:hunter2@127.0.0.1:{port}/services/T0SECRET/B0SECRET?token=s3cr3t-value"
    try:
        for fmt in ("json", "human"):
            configure_logging("INFO", fmt)
            WebhookNotifier(url, attempts=2, backoff=0.01, deadline=5).notify(
                Notification("accepted", "a.csv", "b1", "ok")
            )
            # a refused connection's error, whose text would quote the URL if anything did
            WebhookNotifier("http://user:hunter2@127.0.0.1:1/x?token=s3cr3t-value", attempts=1).notify(
                Notification("accepted", "a.csv", "b1", "ok")
            )
            err = capsys.readouterr().err
            assert "notify.webhook_failed" in err
            for secret in ("hunter2", "T0SECRET", "B0SECRET", "s3cr3t-value", "user"):
                assert secret not in err, (fmt, err)
            assert f"http://127.0.0.1:{port}/" in err  # where it points, and nothing more
    finally:
        failing.server.shutdown()
        configure_logging("INFO", "json")


def test_secrets_are_hidden_from_any_logged_text() -> None:
    from orderpipe.logs import hide_secrets

    assert hide_secrets("posting to https://a:b@hooks.example.com:8443/x/y?token=t failed") == (
        "posting to https://hooks.example.com:8443/… failed"
    )
    assert hide_secrets("HTTPS://example.com/") == "https://example.com"
    assert hide_secrets("https://u@example.com") == "https://example.com/…"
    assert hide_secrets("see http://[::1]:99/p") == "see http://[::1]:99/…"
    assert hide_secrets("http://host:99999/x") == "<url hidden>"
    assert hide_secrets("no url here: a.csv") == "no url here: a.csv"
