"""`orderpipe watch`: poll input/ and feed settled files to a pool of workers.

Polling (not inotify) works the same on every file system and on network mounts. A file is
picked up once its size and mtime held still for one poll interval, so a file being written
is not read half-way; names starting with '.' or not ending in '.csv' are never touched.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from orderpipe.errors import OrderpipeError
from orderpipe.logs import log_event
from orderpipe.ports import ObjectStat
from orderpipe.workflow import Outcome, Pipeline

__all__ = ["Watcher", "is_candidate"]


def is_candidate(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(".csv")


class Watcher:
    def __init__(self, open_pipeline: Callable[[], Pipeline], workers: int, poll_interval: float) -> None:
        self._open = open_pipeline
        self.workers = workers
        self.poll_interval = poll_interval
        self._local = threading.local()

    def _pipeline(self) -> Pipeline:
        """One pipeline (one SQLite connection) per worker thread."""
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self._local.pipeline = self._open()
        return pipeline

    def _work(self, key: str) -> Outcome | None:
        """Never raises: one file's failure must not stop the watcher."""
        try:
            return self._pipeline().process(key)
        except Exception as exc:
            expected = isinstance(exc, (OrderpipeError, OSError))
            log_event(
                "watch.failed",
                logging.ERROR,
                file=key,
                error=f"{type(exc).__name__}: {exc}",
                hint="the file stays in input/ and is retried when it changes or at the next start",
                traceback=None if expected else traceback.format_exc(),
            )
            return None

    def run(self, stop: threading.Event, on_outcome: Callable[[Outcome], None]) -> None:
        """Until `stop` is set; then finishes the files in flight and returns."""
        scanner = self._open()
        scanner.recover()
        seen: dict[str, ObjectStat] = {}
        failed: dict[str, ObjectStat | None] = {}
        in_flight: dict[str, Future[Outcome | None]] = {}
        root = scanner.prefixes.input
        with ThreadPoolExecutor(self.workers, thread_name_prefix="orderpipe-worker") as pool:
            while not stop.is_set():
                for key, future in list(in_flight.items()):
                    if future.done():
                        del in_flight[key]
                        outcome = future.result()
                        if outcome is None:
                            failed[key] = seen.get(key)
                        else:
                            on_outcome(outcome)
                current: dict[str, ObjectStat] = {}
                for key in scanner.store.list(root):
                    name = key[len(root) :]
                    if "/" in name or not is_candidate(name):
                        continue
                    stat = scanner.store.stat(key)
                    if stat is None:
                        continue
                    current[key] = stat
                    settled = seen.get(key) == stat and failed.get(key) != stat
                    if settled and key not in in_flight and len(in_flight) < self.workers * 2:
                        in_flight[key] = pool.submit(self._work, key)
                seen = current
                stop.wait(self.poll_interval)
            for future in in_flight.values():
                outcome = future.result()
                if outcome is not None:
                    on_outcome(outcome)
