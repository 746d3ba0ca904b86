"""`orderpipe watch`: feed the files that land in input/ to a pool of workers.

A file is read only once its writer is done with it:
- on Linux, for a folder, when inotify says its writer closed it (close-write) or it was
  renamed into input/ (moved-to) and nothing wrote to it since;
- otherwise (files already there at start-up, no inotify, an event queue that overflowed),
  once its size and modification time held still for the settle time;
- on S3 at once: a PUT is atomic.
Whatever the signal, the workflow checks the file did not change between reading and
committing; if it did, nothing is committed and the file is read again. Names starting with
'.' or not ending in '.csv' are never touched.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderpipe.adapters.folder import FolderStore
from orderpipe.core.names import upload_family
from orderpipe.errors import OrderpipeError
from orderpipe.logs import log_event
from orderpipe.ports import ObjectStat
from orderpipe.workflow import Outcome, Pipeline

__all__ = ["DEFAULT_SETTLE_TIME", "Readiness", "Watcher", "is_candidate"]

DEFAULT_SETTLE_TIME = 2.0
#: A file whose processing failed for a transient reason is tried again after this long (or at
#: once when it changes): a full disk or a busy database passes.
RETRY_AFTER = 30.0
EMPTY_SETTLE_TIME = 30.0
#: Files queued for the workers per worker by one scan of `input/`. A scan stats every file in
#: it (about a second with 10,000 waiting), so the next scan waits until the queue runs low.
IN_FLIGHT_PER_WORKER = 16


def is_candidate(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(".csv")


class Readiness:
    """Which files in a folder their writers have finished, from inotify events.

    `closed[name]` is True after a close-write or a moved-to, False after a write (the writer is
    still at work); a name with no such event (present at start-up, or made by a hard link) is
    unknown, and the settle time decides for it.
    """

    def __init__(self, folder: Path | None) -> None:
        self.closed: dict[str, bool] = {}
        self._inotify: Any = None
        if folder is None or not sys.platform.startswith("linux"):
            return
        try:
            from inotify_simple import INotify, flags
        except ImportError:
            return
        self._flags = flags
        try:
            inotify = INotify()
            inotify.add_watch(
                folder, flags.CLOSE_WRITE | flags.MOVED_TO | flags.CREATE | flags.MODIFY | flags.MOVED_FROM
            )
        except OSError as exc:  # e.g. the per-user watch limit
            log_event("watch.no_inotify", logging.WARNING, error=str(exc), hint="falling back to the settle time")
            return
        self._inotify = inotify

    @property
    def live(self) -> bool:
        return self._inotify is not None

    def wait(self, timeout: float) -> None:
        """Sleep until an event arrives or `timeout` passes, recording what the events say."""
        if self._inotify is None:
            time.sleep(timeout)
            return
        flags = self._flags
        for event in self._inotify.read(timeout=max(1, int(timeout * 1000))):
            if event.mask & flags.Q_OVERFLOW:
                self.closed.clear()  # events were lost: the settle time decides for everything
                continue
            name = os.fsdecode(event.name)
            if event.mask & (flags.CLOSE_WRITE | flags.MOVED_TO):
                self.closed[name] = True
            elif event.mask & flags.MODIFY:
                self.closed[name] = False
            elif event.mask & (flags.CREATE | flags.MOVED_FROM):
                # created by open() (a write follows) or by link() (complete): unknown; or gone
                self.closed.pop(name, None)

    def forget(self, name: str) -> None:
        self.closed.pop(name, None)

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()


class Watcher:
    def __init__(
        self,
        open_pipeline: Callable[[], Pipeline],
        workers: int,
        poll_interval: float,
        settle_time: float = DEFAULT_SETTLE_TIME,
    ) -> None:
        self._open = open_pipeline
        self.workers = workers
        self.poll_interval = poll_interval
        self.settle_time = settle_time
        self._local = threading.local()

    def _pipeline(self) -> Pipeline:
        """One pipeline (one SQLite connection) per worker thread."""
        pipeline = getattr(self._local, "pipeline", None)
        if pipeline is None:
            pipeline = self._local.pipeline = self._open()
        return pipeline

    def _work(self, key: str) -> Outcome | None:
        """Never raises: one file's failure must not stop the watcher."""
        pipeline = self._pipeline()
        try:
            return pipeline.process(key)
        except Exception as exc:
            if isinstance(exc, OrderpipeError) and not pipeline.store.exists(key):
                return None  # another process (a second watcher) took it: its outcome is theirs
            expected = isinstance(exc, (OrderpipeError, OSError))
            log_event(
                "watch.failed",
                logging.ERROR,
                file=key,
                error=f"{type(exc).__name__}: {exc}",
                hint="the file stays in input/ and is retried within 30 s, at once when it changes",
                traceback=None if expected else traceback.format_exc(),
            )
            return None

    def _pause(self, readiness: Readiness, stop: threading.Event) -> None:
        """Until the next file event (a stop request is seen soon), or the poll interval."""
        if readiness.live:
            readiness.wait(min(self.poll_interval, 0.5))
        else:
            stop.wait(self.poll_interval)

    def run(self, stop: threading.Event, on_outcome: Callable[[Outcome], None]) -> None:
        """Until `stop` is set; then finishes the files in flight and returns."""
        scanner = self._open()
        scanner.recover()
        root = scanner.prefixes.input
        folder = scanner.store.path(root) if isinstance(scanner.store, FolderStore) else None
        atomic_puts = folder is None  # an object store shows only complete objects
        readiness = Readiness(folder)
        files = _Files()
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="orderpipe-worker") as pool:
                while not stop.is_set():
                    files.collect(on_outcome)
                    if len(files.in_flight) >= self.workers * 2:
                        # The workers have files queued: no scan until they are nearly through
                        # them. A scan of thousands of waiting files costs more than a file (and
                        # holds the interpreter the workers need); each one queues up to
                        # IN_FLIGHT_PER_WORKER files a worker.
                        self._pause(readiness, stop)
                        continue
                    waiting = self._scan(scanner, root, readiness, files, atomic_puts)
                    self._start(waiting, root, readiness, files, pool)
                    self._pause(readiness, stop)
                files.drain(on_outcome)
        finally:
            readiness.close()

    def _scan(
        self, scanner: Pipeline, root: str, readiness: Readiness, files: _Files, atomic_puts: bool
    ) -> list[tuple[float, str, ObjectStat, bool]]:
        """The files waiting in input/ and not in flight: (landed, key, stat, ready). Ready: its
        writer is done (a close event, or it held still for the settle time) and it is not
        resting after a failure."""
        now = time.monotonic()
        current: dict[str, tuple[ObjectStat, float]] = {}
        waiting: list[tuple[float, str, ObjectStat, bool]] = []
        for key in scanner.store.list(root):
            name = key[len(root) :]
            if "/" in name or not is_candidate(name):
                continue
            stat = scanner.store.stat(key)
            if stat is None:
                continue
            previous = files.steady.get(key)
            since = previous[1] if previous is not None and previous[0] == stat else now
            current[key] = (stat, since)
            closed = readiness.closed.get(name)
            # An empty file may be one whose writer has not begun: give it longer.
            settle = self.settle_time if stat.size else max(self.settle_time, EMPTY_SETTLE_TIME)
            ready = atomic_puts or closed is True or (closed is None and previous is not None and now - since >= settle)
            last_failure = files.failed.get(key)
            resting = last_failure is not None and last_failure[0] == stat and now - last_failure[1] < RETRY_AFTER
            if key not in files.in_flight:
                waiting.append((stat.modified, key, stat, ready and not resting))
        for gone in files.steady.keys() - current.keys():
            files.failed.pop(gone, None)
        files.steady = current
        return waiting

    def _start(
        self,
        waiting: list[tuple[float, str, ObjectStat, bool]],
        root: str,
        readiness: Readiness,
        files: _Files,
        pool: ThreadPoolExecutor,
    ) -> None:
        """Hand ready files to the workers, up to `IN_FLIGHT_PER_WORKER` each. In the order they
        landed; and the uploads of one name (an upload and its correction, `x.csv` and
        `x.2.csv`) one at a time, each after the ones that landed before it, even when those are
        not ready yet: the later counts last."""
        capacity = self.workers * IN_FLIGHT_PER_WORKER
        busy = {upload_family(k) for k in files.in_flight}
        for _, key, stat, ready in sorted(waiting):
            family = upload_family(key)
            if family in busy:
                continue
            busy.add(family)
            if not ready or len(files.in_flight) >= capacity:
                continue
            readiness.forget(key[len(root) :])
            files.in_flight[key] = (pool.submit(self._work, key), stat)


@dataclass
class _Files:
    """What the watch loop knows of the files in input/ between scans."""

    #: key -> (its stat, since when it has held still)
    steady: dict[str, tuple[ObjectStat, float]] = field(default_factory=dict)
    #: key -> (its stat, when it failed)
    failed: dict[str, tuple[ObjectStat, float]] = field(default_factory=dict)
    #: key -> (its worker's future, the stat it was taken with)
    in_flight: dict[str, tuple[Future[Outcome | None], ObjectStat]] = field(default_factory=dict)

    def collect(self, on_outcome: Callable[[Outcome], None]) -> None:
        """Tell the outcomes of the files the workers finished; a failed one rests a while."""
        for key, (future, taken) in list(self.in_flight.items()):
            if future.done():
                del self.in_flight[key]
                outcome = future.result()
                if outcome is None:
                    self.failed[key] = (taken, time.monotonic())
                elif not outcome.elsewhere:
                    on_outcome(outcome)

    def drain(self, on_outcome: Callable[[Outcome], None]) -> None:
        """On stop: finish the files started and tell their outcomes."""
        for future, _ in self.in_flight.values():
            future.cancel()  # queued, not started: it stays in input/ for the next start
        for future, _ in self.in_flight.values():
            outcome = None if future.cancelled() else future.result()
            if outcome is not None and not outcome.elsewhere:
                on_outcome(outcome)
