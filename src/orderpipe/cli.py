"""The `orderpipe` command: parse, call one workflow function, map errors to exit codes.

Exit codes: 0 all accepted or duplicate, 1 a file rejected (or invalid), 2 usage or
configuration error, 3 infrastructure failure.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from orderpipe.bootstrap import open_pipeline, open_reader
from orderpipe.config import Settings, load_settings
from orderpipe.core.validate import validate_stream
from orderpipe.errors import ConfigError, OrderpipeError, UsageError
from orderpipe.logs import configure_logging, log_event
from orderpipe.output import FORMATS, render
from orderpipe.workflow import Outcome, Pipeline

__all__ = ["main"]

EXIT_REJECTED, EXIT_USAGE, EXIT_INFRA = 1, 2, 3
DAILY = ["order_date", "total_orders", "total_revenue", "total_items_sold", "return_rate", "unique_customers"]
CATEGORY = ["category", "order_date", "daily_revenue", "avg_order_value", "avg_return_rate", "orders"]
BATCHES = ["batch_id", "seq", "file", "status", "rows", "dates", "started_at", "finished_at"]


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"orderpipe: {message}", err=True)
    sys.exit(code)


@contextmanager
def _faults() -> Iterator[None]:
    """Our errors become one line and an exit code; anything else is logged whole, then exit 3."""
    try:
        yield
    except (ConfigError, UsageError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except OrderpipeError as exc:
        _fail(f"{exc} (nothing was lost: fix the cause and run the command again)", EXIT_INFRA)
    except (OSError, MemoryError) as exc:
        _fail(f"{type(exc).__name__}: {exc} (nothing was lost: fix the cause and run the command again)", EXIT_INFRA)
    except Exception as exc:  # a bug: keep the traceback for us, give the user one line
        log_event(
            "internal_error", logging.ERROR, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
        _fail(f"internal error ({type(exc).__name__}); nothing was lost, the details are in the log above", EXIT_INFRA)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]()
    configure_logging(settings.log_level)
    return settings


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Exactly YYYY-MM-DD: Python's own parser also takes 20250701 and 2025-W27-1."""
    if value is None:
        return None
    if not _ISO_DATE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form (e.g. 2025-07-06)")
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a real calendar date") from None


def _date_range(f: Callable[..., Any]) -> Callable[..., Any]:
    """--from and --to, for every command that reads KPIs by date."""
    f = click.option("--to", "end", callback=_date, help="Last date, YYYY-MM-DD.")(f)
    return click.option("--from", "start", callback=_date, help="First date, YYYY-MM-DD.")(f)


def _check_range(start: str | None, end: str | None) -> None:
    if start is not None and end is not None and start > end:
        raise UsageError(f"--from {start} is after --to {end}: no date can match (swap them)")


def _check_category(name: str, configured: tuple[str, ...]) -> None:
    """A name that is not configured (categories are case-sensitive) gets a hint, not an empty table."""
    if name in configured:
        return
    same = [c for c in configured if c.casefold() == name.casefold()]
    close = same or difflib.get_close_matches(name, configured, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}? names are case-sensitive)" if close else ""
    raise UsageError(f"{name!r} is not a configured category{hint}; configured: {', '.join(configured)}")


def _terminal_progress() -> Callable[[str, int, int], None]:
    if not sys.stderr.isatty():
        return lambda step, done, total: None

    def show(step: str, done: int, total: int) -> None:
        filled = int(30 * done / total) if total else 0
        click.echo(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {step:<18} {done}/{total}\033[K", err=True, nl=False)

    return show


def _line(outcome: Outcome) -> str:
    return f"{outcome.status:<9} {outcome.file}  batch {outcome.batch_id[:12]}  {outcome.message}"


def _remember_home(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Parsed left to right, so a `--home` after the subcommand overrides one before it."""
    if value is not None:
        ctx.meta["orderpipe.home"] = value


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command takes, before or after its name (`orderpipe kpis daily --home X`)."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        expose_value=False,
        is_eager=True,
        callback=_remember_home,
        help="Home folder (default: $ORDERPIPE_HOME or ~/.orderpipe).",
    )(f)


INTERRUPTED = "interrupted; nothing is lost (every step is safe to repeat): run the same command again to finish it"
DRAINING = "stopping after the file(s) in flight… (Ctrl-C again to stop at once; nothing is lost either way)"


def _say(message: str) -> None:
    """One line on stderr, written whole even from the signal thread (clears a progress bar first)."""
    clear = "\r\033[K" if sys.stderr.isatty() else ""
    try:
        sys.stderr.write(f"{clear}orderpipe: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class _Interrupts:
    """Ctrl-C and SIGTERM for every command: exit 128+signal (130 for Ctrl-C) with one line.

    Python runs signal handlers only between bytecodes of the main thread, so a main thread
    waiting inside C code (SQLite waiting for a lock, Polars) would ignore Ctrl-C for as long
    as that lasts. The signal also wakes a thread (through the wakeup fd), which reports at
    once and ends the process if the main thread has not unwound after GRACE seconds, or at the
    second signal. Ending it there is safe: every step is idempotent and kill -9 safe.
    `watch` sets `drain`: then the first signal asks it to finish the files in flight.
    """

    GRACE = 2.0

    def __init__(self) -> None:
        self.code = 0
        self.drain: threading.Event | None = None
        self._lock = threading.Lock()
        self._announced = self._raised = False
        self._count = 0
        self._timer: threading.Timer | None = None
        self._installed = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> _Interrupts:
        if self._installed:
            self._read, self._write = os.pipe()
            os.set_blocking(self._write, False)
            self._saved_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
            self._saved = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
            self._thread = threading.Thread(target=self._watch, name="orderpipe-interrupts", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._installed:
            return
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._saved_fd)
        if self._timer is not None:
            self._timer.cancel()
        os.close(self._write)  # ends the thread's read
        self._thread.join(1)
        os.close(self._read)

    def _handler(self, signum: int, frame: object) -> None:
        """In the main thread, when it can: unwind (clean up scratch files) unless draining."""
        if self.drain is None and not self._raised:
            self._raised = True
            self.code = self.code or 128 + signum
            raise KeyboardInterrupt

    def _watch(self) -> None:
        while data := os.read(self._read, 16):
            for signum in data:
                if signum not in (signal.SIGINT, signal.SIGTERM):
                    continue
                self.code = self.code or 128 + signum
                self._count += 1
                if self._count == 1 and self.drain is not None:
                    _say(DRAINING)
                    self.drain.set()
                elif self._count == 1:
                    self.announce()
                    self._timer = threading.Timer(self.GRACE, self._exit_now)
                    self._timer.daemon = True
                    self._timer.start()
                else:
                    self.announce()
                    self._exit_now()

    def announce(self) -> None:
        with self._lock:
            if not self._announced:
                self._announced = True
                _say(INTERRUPTED)

    def _exit_now(self) -> None:
        os._exit(self.code or 130)


class _Group(click.Group):
    """A group whose commands all get the global options (subgroups: `@main.group(cls=_Group)`);
    the top one turns Ctrl-C into exit 130 and one line instead of click's `Aborted!` (exit 1)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "home" for p in cmd.params):
            global_options(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        with _Interrupts() as interrupts:
            ctx.meta["orderpipe.interrupts"] = interrupts
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt:
                interrupts.announce()
                raise click.exceptions.Exit(interrupts.code or 130) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@global_options
@click.version_option(package_name="orderpipe")
@click.pass_context
def main(ctx: click.Context) -> None:
    """orderpipe: exact daily KPIs from e-commerce order files, exactly once."""
    ctx.ensure_object(dict)
    ctx.obj["settings"] = lambda: load_settings(ctx.meta.get("orderpipe.home"))


def _process_all(pipeline: Pipeline, keys: Iterator[str]) -> int:
    """Process each key in turn (taken lazily: each is uploaded or requeued just before its
    run), print one line per file; returns the exit code: 3 when a batch failed (the files
    after it were still processed), else 1 when one was rejected, else 0."""
    code = 0
    for key in keys:
        try:
            outcome = pipeline.process(key, _terminal_progress())
        finally:
            if sys.stderr.isatty():
                click.echo("\r\033[K", err=True, nl=False)
        click.echo(_line(outcome))
        if outcome.status == "failed":
            code = EXIT_INFRA
        elif outcome.status == "rejected" and code == 0:
            code = EXIT_REJECTED
    return code


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def run(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Upload each FILE into input/ and run the whole workflow on it, in the order given."""
    with _faults():
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"no such file: {', '.join(missing)}")
        pipeline = open_pipeline(_settings(ctx))
        pipeline.recover()
        code = _process_all(pipeline, (pipeline.submit(path) for path in files))
    sys.exit(code)


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Files processed at once.")
@click.pass_context
def watch(ctx: click.Context, workers: int) -> None:
    """Process what is in input/, then every new file as it lands, until SIGINT/SIGTERM."""
    from orderpipe.watch import Watcher

    with _faults():
        settings = _settings(ctx)
        stop = threading.Event()
        interrupts: _Interrupts | None = ctx.meta.get("orderpipe.interrupts")
        if interrupts is not None:
            interrupts.drain = stop  # Ctrl-C: finish the files in flight; twice: stop at once
        watcher = Watcher(lambda: open_pipeline(settings), workers, settings.poll_interval, settings.settle_time)
        click.echo(f"watching {settings.home / 'input'} with {workers} worker(s); Ctrl-C to stop", err=True)
        watcher.run(stop, lambda outcome: click.echo(_line(outcome)))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def validate(ctx: click.Context, file: Path, fmt: str) -> None:
    """Print the validation report of FILE; change nothing. Exit 1 when it is invalid."""
    with _faults():
        settings = _settings(ctx)
        with file.open("rb") as stream:
            report = validate_stream(stream, file.name, frozenset(settings.categories))
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"{report.file}: {report.verdict}, {report.rows} rows")
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
        for issue in report.errors:
            click.echo(f"  {issue.code} ×{issue.count} — {issue.hint}")
            for sample in issue.samples[:5]:
                column = f" [{sample.column}]" if sample.column else ""
                click.echo(f"    line {sample.line}{column}: {sample.message}")
    sys.exit(0 if report.valid else EXIT_REJECTED)


@main.group(cls=_Group)
def task() -> None:
    """The container's commands on AWS (configured by ORDERPIPE_* environment variables)."""


def _task_key() -> tuple[str, str, str | None]:
    key, result = os.environ.get("ORDERPIPE_TASK_KEY", ""), os.environ.get("ORDERPIPE_TASK_RESULT_KEY", "")
    if not key:
        raise UsageError("ORDERPIPE_TASK_KEY (the input object key) is not set")
    return key, result, os.environ.get("ORDERPIPE_TASK_VERSION") or None


@task.command("validate")
@click.pass_context
def task_validate(ctx: click.Context) -> None:
    """Validate ORDERPIPE_TASK_KEY, write the verdict to ORDERPIPE_TASK_RESULT_KEY; exit 0 unless infra fails."""
    from orderpipe import tasks

    with _faults():
        key, result, version = _task_key()
        if not result:
            raise UsageError("ORDERPIPE_TASK_RESULT_KEY (where the verdict goes) is not set")
        verdict = tasks.validate(open_pipeline(_settings(ctx)), key, result, version)
    click.echo(json.dumps(verdict))


@task.command("transform")
@click.pass_context
def task_transform(ctx: click.Context) -> None:
    """Stage facts, commit and recompute the KPIs of ORDERPIPE_TASK_KEY (a validated file)."""
    from orderpipe import tasks

    with _faults():
        key, _, version = _task_key()
        outcome = tasks.transform(open_pipeline(_settings(ctx)), key, version)
    click.echo(_line(outcome))


@main.group(cls=_Group)
def kpis() -> None:
    """Read the KPIs."""


def _format_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)(f)


@kpis.command()
@_date_range
@_format_option
@click.pass_context
def daily(ctx: click.Context, start: str | None, end: str | None, fmt: str) -> None:
    """Order-level KPIs per date, sorted by date."""
    with _faults():
        _check_range(start, end)
        rows = open_reader(_settings(ctx)).kpis.daily(start, end)
    click.echo(render(rows, DAILY, fmt))


@kpis.command()
@click.argument("name", required=False)
@_date_range
@_format_option
@click.pass_context
def category(ctx: click.Context, name: str | None, start: str | None, end: str | None, fmt: str) -> None:
    """Category KPIs, sorted by (category, date); NAME picks one category (case-sensitive)."""
    with _faults():
        _check_range(start, end)
        settings = _settings(ctx)
        rows = open_reader(settings).kpis.category(name, start, end)
        if name is not None and not rows:  # rows of a category no longer configured still print
            _check_category(name, settings.categories)
    click.echo(render(rows, CATEGORY, fmt))


@main.command()
@_format_option
@click.pass_context
def batches(ctx: click.Context, fmt: str) -> None:
    """Run history: batch id, file, status, rows, dates touched, times."""
    with _faults():
        runs = open_reader(_settings(ctx)).ledger.runs()
    rows = []
    for r in runs:
        row: dict[str, Any] = {c: getattr(r, c) for c in BATCHES}
        if fmt == "table":
            row["batch_id"] = r.batch_id[:12]
            row["dates"] = f"{r.dates[0]}…{r.dates[-1]} ({len(r.dates)})" if len(r.dates) > 1 else " ".join(r.dates)
        rows.append(row)
    click.echo(render(rows, BATCHES, fmt))


@main.command()
@click.argument("batch_id", required=False)
@click.option("--rejected", "all_rejected", is_flag=True, help="Replay every quarantined file.")
@click.pass_context
def replay(ctx: click.Context, batch_id: str | None, all_rejected: bool) -> None:
    """Run quarantined files through the workflow again (e.g. after allowing a new category)."""
    with _faults():
        if bool(batch_id) == all_rejected:
            raise UsageError("give either a BATCH_ID (a prefix of 8+ characters is enough) or --rejected")
        if batch_id is not None and len(batch_id) < 8:
            raise UsageError("a batch id prefix needs at least 8 characters")
        pipeline = open_pipeline(_settings(ctx))
        pipeline.recover()
        keys = pipeline.quarantined(batch_id)
        stranded = pipeline.stranded(batch_id)
        if not keys and not stranded:
            raise UsageError(
                f"no quarantined file{' for batch ' + batch_id if batch_id else 's'} in rejected/"
                " and no failed batch to finish"
            )
        code = _process_all(pipeline, (pipeline.requeue(key) for key in keys))
        for batch in stranded:
            outcome = pipeline.finish(batch)
            click.echo(_line(outcome))
            code = EXIT_INFRA if outcome.status == "failed" else code
    sys.exit(code)
