"""The `orderpipe` command: parse, call one workflow function, map errors to exit codes.

Exit codes: 0 all accepted or duplicate, 1 a file rejected (or invalid), 2 usage or
configuration error, 3 infrastructure failure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO, NoReturn

import click

from orderpipe.atomic import write_atomic
from orderpipe.bootstrap import open_pipeline, open_reader, require_home
from orderpipe.config import CONFIG_FILE, Settings, load_settings
from orderpipe.core.kpis import KPIS, DateKpis
from orderpipe.core.names import REPORT_SUFFIX
from orderpipe.core.report import ValidationReport
from orderpipe.core.validate import validate as validate_exact
from orderpipe.errors import ConfigError, DatabaseDamaged, OrderpipeError, UsageError
from orderpipe.ingest import validate_file
from orderpipe.logs import LOG_FORMATS, configure_logging, log_event
from orderpipe.output import FORMATS, printable, render, render_kpis
from orderpipe.presets import PRESETS
from orderpipe.progress import UNKNOWN, Bar, Progress, counted
from orderpipe.workflow import Outcome, Pipeline

__all__ = ["main"]

EXIT_REJECTED, EXIT_USAGE, EXIT_INFRA = 1, 2, 3
BATCHES = ["batch_id", "seq", "file", "status", "rows", "dates", "started_at", "finished_at"]
#: The run history's default table: fewer columns, an 8-character id (enough for `replay`).
BATCHES_SHORT = ["batch", "file", "status", "rows", "dates", "finished"]
FILE_RESULTS = ("text", "jsonl")


#: How one error made of several problems separates them: one line each.
ERROR_LINES = "\norderpipe: "


def _fail(message: str, code: int) -> NoReturn:
    """Messages quote file names and values: control characters in them are shown escaped."""
    click.echo("orderpipe: " + ERROR_LINES.join(printable(line) for line in message.split(ERROR_LINES)), err=True)
    sys.exit(code)


@contextmanager
def _faults() -> Iterator[None]:
    """Our errors become one line and an exit code; anything else is logged whole, then exit 3."""
    try:
        yield
    except (ConfigError, UsageError) as exc:
        _fail(str(exc), EXIT_USAGE)
    except DatabaseDamaged as exc:  # says what to do; running the command again would not help
        _fail(str(exc), EXIT_INFRA)
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
    level = "ERROR" if _quiet(ctx) else "DEBUG" if _verbose(ctx) else settings.log_level
    configure_logging(level, ctx.meta.get("orderpipe.log_format", "auto"), verbose=_verbose(ctx))
    return settings


def _quiet(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("orderpipe.quiet"))


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.meta.get("orderpipe.verbose")) and not _quiet(ctx)


def _echo(text: str) -> None:
    """Prints `text` unless it is empty (an empty JSON-lines result is no line at all)."""
    if text:
        click.echo(text)


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


def _bar(quiet: bool) -> Bar:
    """The progress bar on stderr, on a terminal only: never in a pipe, nor with -q."""
    return Bar(None if quiet or not sys.stderr.isatty() else sys.stderr)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _span(dates: Sequence[str]) -> str:
    return f"{dates[0]}…{dates[-1]}" if len(dates) > 1 else "".join(dates)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def _separator_hint(report: ValidationReport) -> str | None:
    """A header read as one column holding ';' or tabs: the file is not comma-separated."""
    if not any(issue.code == "missing-column" for issue in report.errors):
        return None
    extra = next((w for w in report.warnings if w.startswith("extra columns ignored: ")), "")
    for shown, name in ((";", "';'"), ("\\t", "tabs")):
        if shown in extra:
            return f"the file seems to be separated by {name}, not commas"
    return None


def _problems(outcome: Outcome) -> str:
    """The first broken rule and where, and how many other kinds: the report has the rest."""
    report = outcome.report
    if report is None or not report.errors:
        return "invalid"
    separator = _separator_hint(report)
    if separator:
        return separator
    first = report.errors[0]
    text = first.code + (f" ×{first.count}" if first.count > 1 else "")
    if first.samples:
        sample = first.samples[0]
        text += f" at line {sample.line}" + (f" ({sample.column})" if sample.column else "")
        if len(report.errors) == 1:  # the one problem, said in full when it fits
            text += ": " + (sample.message if len(sample.message) <= 60 else sample.message[:59] + "…")
    others = len(report.errors) - 1
    return text + (f"; {others} more kind{'s' if others > 1 else ''} of error" if others else "")


def _short_path(path: Path) -> str:
    """`rejected/x.csv.report.json` under the current folder, `~/…` under the user's home."""
    absolute = path.absolute()
    for base, shown in ((Path.cwd(), ""), (Path.home(), "~/")):
        if absolute.is_relative_to(base):
            return shown + str(absolute.relative_to(base))
    return str(path)


class FileResults:
    """One result per file on stdout: a line for a person, or a JSON object per line for a
    script (`--format jsonl`). `quiet` keeps only the files that need someone (rejected, failed)."""

    def __init__(self, settings: Settings, fmt: str = "text", quiet: bool = False) -> None:
        self.settings = settings
        self.fmt = fmt
        self.quiet = quiet

    def report_path(self, outcome: Outcome) -> str | None:
        """Where the report of a quarantined file is, as the user would open it."""
        if outcome.status not in ("rejected", "failed") or not outcome.archived_as:
            return None
        key = outcome.archived_as + REPORT_SUFFIX
        if self.settings.backend == "aws":
            return f"s3://{self.settings.bucket}/{key}"
        return _short_path(self.settings.home / key)

    def line(self, outcome: Outcome, seconds: float | None) -> str:
        report = self.report_path(outcome)
        if self.fmt == "jsonl":
            return json.dumps(
                {
                    "status": outcome.status,
                    "file": outcome.file,
                    "batch_id": outcome.batch_id,
                    "rows": outcome.rows,
                    "dates": list(outcome.dates),
                    "seconds": None if seconds is None else round(seconds, 3),
                    "report": report,
                    "message": outcome.message,
                },
                ensure_ascii=False,
            )
        detail = outcome.message.removeprefix(f"{outcome.file}: ")
        parts = [f"{outcome.status:<9} {outcome.file}"]
        if outcome.status == "accepted":
            parts += [_plural(outcome.rows, "row"), _span(outcome.dates)]
        elif outcome.status == "duplicate":
            short = detail.split("), ")[0] + ")" if "), " in detail else detail
            retracted = "), which was retracted" in detail  # then the line says how to count it again
            parts += [_plural(outcome.rows, "row"), detail if retracted else short]
        elif outcome.status == "rejected":
            parts += [_plural(outcome.rows, "row") if outcome.rows else "", _problems(outcome)]
        elif outcome.status == "dismissed":
            parts += [detail]
        else:  # failed: the reason, without the parts this line says its own way
            reason = detail.split("; kept as ")[0].split("; `orderpipe replay")[0]
            again = f"orderpipe replay {outcome.batch_id[:8]}" if outcome.batch_id else "orderpipe replay --rejected"
            parts += [reason.removeprefix("failed: "), f"`{again}` retries it"]
        parts.append("(by another process, which recorded it)" if outcome.elsewhere else "")
        parts.append("" if seconds is None else _duration(seconds))
        parts.append(f"report: {report}" if report else "")
        return printable("  ".join(p for p in parts if p))  # names and messages: the user's text

    def show(self, outcome: Outcome, seconds: float | None = None) -> None:
        if self.quiet and self.fmt == "text" and outcome.status in ("accepted", "duplicate", "dismissed"):
            return
        click.echo(self.line(outcome, seconds))


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """Parsed left to right, so an option after the subcommand overrides one before it; a flag
    given anywhere counts."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.meta[key] = value

    return callback


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command takes, before or after its name (`orderpipe kpis daily --home X -q`)."""
    common: dict[str, Any] = {"expose_value": False, "is_eager": True}
    options = [
        click.option(
            "--home",
            type=click.Path(file_okay=False, path_type=Path),
            callback=_remember("orderpipe.home"),
            help="Home folder (default: $ORDERPIPE_HOME or ~/.orderpipe).",
            **common,
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            callback=_remember("orderpipe.quiet"),
            help="Only problems: no progress bar, only errors logged, no line for accepted files.",
            **common,
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            callback=_remember("orderpipe.verbose"),
            help="Log every event, with tracebacks.",
            **common,
        ),
        click.option(
            "--log-format",
            type=click.Choice(LOG_FORMATS),
            callback=_remember("orderpipe.log_format"),
            help="Log lines on stderr: auto (the default) is human on a terminal, JSON otherwise.",
            **common,
        ),
    ]
    # Decorating a function prepends each option; a command (see _Group) gets them appended.
    for option in options if isinstance(f, click.Command) else reversed(options):
        f = option(f)
    return f


INTERRUPTED = "interrupted; nothing is lost (every step is safe to repeat): run the same command again to finish it"
#: What a stopped command says when it had nothing to finish.
STOPPED = {
    "kpis daily": "interrupted; nothing was changed (this command only reads)",
    "kpis category": "interrupted; nothing was changed (this command only reads)",
    "batches": "interrupted; nothing was changed (this command only reads)",
    "status": "interrupted; nothing was changed (this command only reads)",
    "validate": "interrupted; nothing was changed (this command only reads)",
    "serve": "stopped serving the dashboard and its API",
}
DRAINING = "stopping after the file(s) in flight… (Ctrl-C again to stop at once; nothing is lost either way)"


def _say(message: str) -> None:
    """One line on stderr, written whole even from the signal thread (clears a progress bar first)."""
    clear = "\r\033[K" if sys.stderr.isatty() else ""
    try:
        sys.stderr.write(f"{clear}orderpipe: {printable(message)}\n")
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
        self.command = ""  # `kpis daily`: what the line says depends on it (set by _Command)
        self.drain: threading.Event | None = None
        self._lock = threading.Lock()
        self._announced = self._raised = False
        self._count = 0
        self._timer: threading.Timer | None = None
        self._installed = threading.current_thread() is threading.main_thread()
        self._saved_hook = sys.unraisablehook

    def __enter__(self) -> _Interrupts:
        if self._installed:
            self._read, self._write = os.pipe()
            os.set_blocking(self._write, False)
            self._saved_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
            self._saved = {sig: signal.signal(sig, self._handler) for sig in (signal.SIGINT, signal.SIGTERM)}
            if getattr(self._saved[signal.SIGINT], "before_the_command", False):  # (`__main__.entry`'s)
                self._saved[signal.SIGINT] = signal.default_int_handler
            self._saved_hook, sys.unraisablehook = sys.unraisablehook, self._swallowed
            self._thread = threading.Thread(target=self._watch, name="orderpipe-interrupts", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._installed:
            return
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        sys.unraisablehook = self._saved_hook
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

    def _swallowed(self, unraisable: Any) -> None:
        """The interrupt raised inside a callback that cannot pass it on (Polars calls some
        Python code from Rust and only reports what it raises): the command would go on as if
        no Ctrl-C came. It ends now, as after the grace time. Anything else as Python says it."""
        if unraisable.exc_type is KeyboardInterrupt and self._raised:
            self.announce()
            self._exit_now()
        self._saved_hook(unraisable)

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
                _say(STOPPED.get(self.command, INTERRUPTED))

    def _exit_now(self) -> None:
        os._exit(self.code or 130)


class _Command(click.Command):
    """Every command of a _Group: tells the Ctrl-C handling which one runs."""

    def invoke(self, ctx: click.Context) -> Any:
        _name_running(ctx)
        return super().invoke(ctx)


def _name_running(ctx: click.Context) -> None:
    """Tell the Ctrl-C handling which command runs (`batches`, then `batches retract`)."""
    interrupts: _Interrupts | None = ctx.meta.get("orderpipe.interrupts")
    if interrupts is not None:
        names, at = [], ctx
        while at.parent is not None:  # the root's name is the program's, however it was started
            names.append(at.info_name or "")
            at = at.parent
        interrupts.command = " ".join(reversed(names))


class _Group(click.Group):
    """A group whose commands all get the global options (subgroups: `@main.group(cls=_Group)`);
    the top one turns Ctrl-C into exit 130 and one line instead of click's `Aborted!` (exit 1)."""

    command_class = _Command

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not any(p.name == "home" for p in cmd.params):
            global_options(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            _name_running(ctx)  # a group that runs on its own too (`batches`)
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
    """orderpipe: exact daily KPIs from e-commerce order files, exactly once.

    \b
    Examples:
      orderpipe run orders.csv          validate, stage and count a file
      orderpipe kpis daily --from 2025-07-01
      orderpipe batches                 the run history
    """
    ctx.ensure_object(dict)
    ctx.obj["settings"] = lambda: load_settings(ctx.meta.get("orderpipe.home"))


def _process_all(
    pipeline: Pipeline,
    keys: Iterator[str],
    results: FileResults,
    quiet: bool,
    step: Callable[[str, Progress], Outcome] | None = None,
) -> int:
    """Process each key in turn (taken lazily: each is uploaded just before its run) with
    `step` (`Pipeline.process` unless given), print one line per file; returns the exit code:
    3 when a batch failed (the files after it were still processed), else 1 when one was
    rejected, else 0."""
    code = 0
    step = step or pipeline.process
    with _bar(quiet) as bar:
        for key in keys:
            began = time.monotonic()
            with bar.file() as progress:  # erased when the file is done: its line stands alone
                outcome = step(key, progress)
            results.show(outcome, time.monotonic() - began)
            if outcome.status == "failed":
                code = EXIT_INFRA
            elif outcome.status == "rejected" and code == 0:
                code = EXIT_REJECTED
    return code


def _results_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FILE_RESULTS),
        default="text",
        show_default=True,
        help="One line per file for people, or one JSON object per line (jsonl) for scripts.",
    )(f)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@_results_option
@click.pass_context
def run(ctx: click.Context, files: tuple[Path, ...], fmt: str) -> None:
    """Upload each FILE into input/ and run the whole workflow on it, in the order given.

    Prints one line per file: status, name, rows, dates, time, and for a rejected file where
    its report is. Exit 0 all accepted or duplicate, 1 one was rejected, 3 one failed.

    \b
    Examples:
      orderpipe run orders.csv
      orderpipe run day1.csv day2.csv --format jsonl
    """
    with _faults():
        folders = [str(f) for f in files if f.is_dir()]
        if folders:
            raise UsageError(f"{folders[0]} is a directory: give its files, e.g. {Path(folders[0]) / '*.csv'}")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise UsageError(f"no such file: {', '.join(missing)}")
        settings = _settings(ctx)
        pipeline = open_pipeline(settings)
        pipeline.recover()
        results = FileResults(settings, fmt, _quiet(ctx))
        code = _process_all(pipeline, _uploads(pipeline, files, _quiet(ctx)), results, _quiet(ctx))
    sys.exit(code)


def _uploads(pipeline: Pipeline, files: Sequence[Path], quiet: bool) -> Iterator[str]:
    """Each file's upload key, just before its turn; an earlier upload of the same name still
    waiting (a run interrupted after its upload) goes first, and its user is told: files count
    in the order they landed, so a correction is never undone by the stale upload after it."""
    for path in files:
        key = pipeline.submit(path)
        for earlier, stat in pipeline.earlier_uploads(key):
            if not pipeline.store.exists(earlier):
                continue  # another process (a watcher) took it meanwhile
            if not quiet:
                landed = time.strftime("%Y-%m-%d %H:%M", time.localtime(stat.modified))
                click.echo(
                    f"orderpipe: an earlier upload of {path.name} has been waiting as {earlier} since {landed};"
                    " it is counted first, then this one (files count in the order they landed)",
                    err=True,
                )
            yield earlier
        yield key


class _Timer:
    """How long each file took, for its line: the watcher's workers call `process` in threads
    and hand back only the outcome, so each pipeline's `process` is timed (and given its part of
    the progress bar) where it runs."""

    def __init__(self, bar: Bar) -> None:
        self.bar = bar
        self._seconds: dict[int, float] = {}
        self._lock = threading.Lock()

    def timed(self, pipeline: Pipeline) -> Pipeline:
        process = pipeline.process

        def timed_process(key: str, *args: Any) -> Outcome:
            began = time.monotonic()
            with self.bar.file() as progress:
                outcome = process(key, *(args or (progress,)))
            with self._lock:
                self._seconds[id(outcome)] = time.monotonic() - began
            return outcome

        pipeline.process = timed_process  # type: ignore[method-assign, assignment]
        return pipeline

    def take(self, outcome: Outcome) -> float | None:
        with self._lock:
            return self._seconds.pop(id(outcome), None)


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Files processed at once.")
@_results_option
@click.pass_context
def watch(ctx: click.Context, workers: int, fmt: str) -> None:
    """Process what is in input/, then every new *.csv file as it lands, until Ctrl-C or SIGTERM.

    Prints one line per file, like `run`. The first Ctrl-C finishes the files in flight; a
    second one stops at once (nothing is lost either way).

    \b
    Examples:
      orderpipe watch
      orderpipe watch --workers 2 --format jsonl > results.jsonl
    """
    from orderpipe.watch import Watcher

    with _faults():
        settings = _settings(ctx)
        stop = threading.Event()
        interrupts: _Interrupts | None = ctx.meta.get("orderpipe.interrupts")
        if interrupts is not None:
            interrupts.drain = stop  # Ctrl-C: finish the files in flight; twice: stop at once
        results = FileResults(settings, fmt, _quiet(ctx))
        if not _quiet(ctx):
            watching = f"watching {settings.home / 'input'} with {workers} worker(s); Ctrl-C to stop"
            click.echo(printable(watching), err=True)
        with _bar(_quiet(ctx)) as bar:
            timer = _Timer(bar)
            watcher = Watcher(
                lambda: timer.timed(open_pipeline(settings)), workers, settings.poll_interval, settings.settle_time
            )

            def show(outcome: Outcome) -> None:
                with bar.above():  # another file's bar may be on the line
                    results.show(outcome, timer.take(outcome))

            watcher.run(stop, show)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (else: a token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--token",
    envvar="ORDERPIPE_SERVE_TOKEN",
    help="Required of every request: 16+ letters, digits, - . _ ~ (e.g. openssl rand -hex 16).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="A DNS name that leads here, to answer as Host (this machine's IP addresses need none); repeatable.",
)
@click.option(
    "--cors-origin", "cors_origins", multiple=True, help="An origin (https://host[:port]) allowed to read the API."
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    token: str | None,
    allow_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
) -> None:
    """Serve the KPI dashboard and its read-only JSON API (docs/api.md) until Ctrl-C.

    Listens on 127.0.0.1 only, unless --host says otherwise; then a token is required
    (--token or $ORDERPIPE_SERVE_TOKEN): open http://HOST:PORT/?token=TOKEN once in the browser.
    On 0.0.0.0 or :: it prints the addresses that answer; a DNS name needs --allow-host.

    \b
    Examples:
      orderpipe serve
      orderpipe serve --port 0
      ORDERPIPE_SERVE_TOKEN=$(openssl rand -hex 16) orderpipe serve --host 0.0.0.0 --allow-host kpis.example.com
    """
    from orderpipe.web.serve import check_binding
    from orderpipe.web.serve import serve as run_server

    with _faults():
        settings = _settings(ctx)
        guard = check_binding(host, token, allow_hosts, cors_origins)
        run_server(
            settings,
            host,
            port,
            guard,
            announce=lambda line: click.echo(line, err=_quiet(ctx)),
            access_log=_verbose(ctx),
        )


STDIN = "-"


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def validate(ctx: click.Context, file: Path, fmt: str) -> None:
    """Print the validation report of FILE (`-` reads standard input); change nothing.

    Exit 1 when the file is invalid. With -q, print nothing for a valid file.

    \b
    Examples:
      orderpipe validate orders.csv
      gunzip -c orders.csv.gz | orderpipe validate - --format json
    """
    with _faults():
        settings = _settings(ctx)
        if str(file) != STDIN and file.is_dir():
            raise UsageError(f"{file} is a directory: give one file")
        if str(file) != STDIN and not file.exists():
            raise UsageError(f"no such file: {file}")
        with _bar(_quiet(ctx)) as bar, bar.file() as progress:
            if str(file) != STDIN and file.is_file():  # as `run` reads it
                report = validate_file(file, file.name, settings.categories, settings.shape, progress)
            else:  # a stream (standard input, a pipe) can be read once: by the exact validator
                categories, window = frozenset(settings.categories), settings.shape.date_window()
                if str(file) == STDIN:
                    report = validate_exact(_stdin(bar, progress), "stdin", settings.shape, categories, window=window)
                else:
                    with file.open("rb") as stream:
                        report = validate_exact(stream, file.name, settings.shape, categories, window=window)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif not (report.valid and _quiet(ctx)):
        for line in _report_lines(report):
            click.echo(printable(line))  # the file's name, its columns and values: the user's text
    sys.exit(0 if report.valid else EXIT_REJECTED)


def _stdin(bar: Bar, progress: Progress) -> BinaryIO:
    """Standard input, counted for the bar when one is shown (its size, when it is a file)."""
    if not bar.enabled:
        return sys.stdin.buffer
    fd = sys.stdin.fileno()
    status = os.fstat(fd)
    size = status.st_size if S_ISREG(status.st_mode) else UNKNOWN
    return counted(fd, lambda done: progress("validating", done, size), closefd=False)


def _report_lines(report: ValidationReport) -> Iterator[str]:
    """The validation report for a person, a line at a time."""
    rows = f", {_plural(report.rows, 'row')}" if report.valid or report.rows else ""
    yield f"{report.file}: {report.verdict}{rows}"
    separator = _separator_hint(report)
    if separator:
        yield f"  {separator}"
    for warning in report.warnings:
        yield f"  warning: {warning}"
    for reading in report.shape:
        yield f"  read as: {reading}"
    for issue in report.errors:
        yield f"  {issue.code} ×{issue.count} — {issue.hint}"
        for sample in issue.samples[:5]:
            column = f" [{sample.column}]" if sample.column else ""
            yield f"    line {sample.line}{column}: {sample.message}"


@main.command()
@click.option("--preset", type=click.Choice(sorted(PRESETS)), required=True, help="The shape of your files.")
@click.option("--force", is_flag=True, help="Replace an existing orderpipe.toml.")
@click.pass_context
def init(ctx: click.Context, preset: str, force: bool) -> None:
    """Write a commented orderpipe.toml into the home for a common shape of input files.

    \b
    Examples:
      orderpipe init --preset shopify      # Shopify's orders export: line items, its column names
      orderpipe init --preset seed         # one order per row, the 8 standard columns
      orderpipe init --preset lab          # headers, items and products in files of their own
    """
    with _faults():
        home = _settings(ctx).home
        target = home / CONFIG_FILE
        if target.exists() and not force:
            raise UsageError(f"{target} already exists: edit it, or add --force to replace it with the preset")
        home.mkdir(parents=True, exist_ok=True)
        write_atomic(target, PRESETS[preset])  # a full disk leaves no cut or empty file behind
        load_settings(home)  # the preset must load as written (and with this environment)
    if not _quiet(ctx):
        click.echo(printable(f"wrote {target} ({preset}); `orderpipe validate FILE` shows how a file is read"))


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
        settings = _settings(ctx)
        outcome = tasks.transform(open_pipeline(settings), key, version)
    FileResults(settings).show(outcome)


@main.group(cls=_Group)
def kpis() -> None:
    """Read the KPIs, or rebuild them from the stored facts.

    \b
    Examples:
      orderpipe kpis daily --from 2025-07-01 --to 2025-07-07
      orderpipe kpis category Books --format csv > books.csv
    """


def _format_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="jsonl: one JSON object per line.",
    )(f)


def _wide_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--wide", is_flag=True, help="Every column, under its full name (tables only).")(f)


@kpis.command()
@_date_range
@_format_option
@_wide_option
@click.pass_context
def daily(ctx: click.Context, start: str | None, end: str | None, fmt: str, wide: bool) -> None:
    """Order-level KPIs per date, sorted by date.

    \b
    Examples:
      orderpipe kpis daily
      orderpipe kpis daily --from 2025-07-01 --format jsonl
    """
    with _faults():
        _check_range(start, end)
        rows = open_reader(_settings(ctx)).kpis.daily(start, end)
    _echo(render_kpis(rows, KPIS.order_columns, fmt, wide))


@kpis.command()
@click.argument("name", required=False)
@_date_range
@_format_option
@_wide_option
@click.pass_context
def category(ctx: click.Context, name: str | None, start: str | None, end: str | None, fmt: str, wide: bool) -> None:
    """Category KPIs, sorted by (category, date); NAME picks one category (case-sensitive).

    \b
    Examples:
      orderpipe kpis category
      orderpipe kpis category Electronics --to 2025-07-02 --format json
    """
    with _faults():
        _check_range(start, end)
        settings = _settings(ctx)
        rows = open_reader(settings).kpis.category(name, start, end)
        if name is not None and not rows:  # rows of a category no longer configured still print
            _check_category(name, settings.categories)
    _echo(render_kpis(rows, KPIS.category_columns, fmt, wide))


REBUILD_CHUNK = 100


def _fact_dates(pipeline: Pipeline) -> list[str]:
    """Every date that has committed facts or stored KPIs."""
    ledger = pipeline.ledger
    dates = {d for run in ledger.runs() if run.status in ("accepted", "duplicate") for d in run.dates}
    dates.update(d for batch in (*ledger.failed(), *ledger.unfinished()) for d in batch.dates)
    dates.update(str(row["order_date"]) for row in pipeline.kpis.daily(None, None))
    dates.update(str(row["order_date"]) for row in pipeline.kpis.category(None, None, None))
    return sorted(dates)


@kpis.command()
@_date_range
@click.pass_context
def rebuild(ctx: click.Context, start: str | None, end: str | None) -> None:
    """Recompute the stored KPIs from the committed facts, e.g. after an upgrade that changes a
    formula. Safe to interrupt and run again, and beside a running `watch`.

    \b
    Examples:
      orderpipe kpis rebuild
      orderpipe kpis rebuild --from 2025-07-01 --to 2025-07-31
    """
    with _faults():
        _check_range(start, end)
        pipeline = open_pipeline(_settings(ctx))
        pipeline.recover()
        dates = [d for d in _fact_dates(pipeline) if (start or d) <= d <= (end or d)]
        with _bar(_quiet(ctx)) as bar, bar.file(min_bytes=0) as progress:
            for done in range(0, len(dates), REBUILD_CHUNK):
                progress("recomputing", done, len(dates))
                pipeline.recompute(dates[done : done + REBUILD_CHUNK])
    if not _quiet(ctx):
        span = f" ({_span(dates)})" if dates else ""
        click.echo(f"recomputed the KPIs of {_plural(len(dates), 'date')}{span}")


def _short_dates(dates: Sequence[str]) -> str:
    """`2025-07-01…07-07`: the last date without the year the first one already says."""
    if len(dates) < 2:
        return "".join(dates)
    last = dates[-1][5:] if dates[-1][:4] == dates[0][:4] else dates[-1]
    return f"{dates[0]}…{last}"


def _local_minute(timestamp: str) -> str:
    try:
        return dt.datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return timestamp


def _clip_middle(text: str, width: int) -> str:
    """`a_very_long_na…2025.csv`: the start and the end of a name say the most."""
    if len(text) <= width:
        return text
    tail = min(8, (width - 1) // 2)
    return text[: width - 1 - tail] + "…" + text[len(text) - tail :]


def _fit(rows: list[dict[str, Any]], columns: Sequence[str], column: str) -> str:
    """A table narrower than the terminal it is shown on (a full last column would wrap on some
    terminals): `column`'s values are shortened."""
    table = render(rows, columns, "table")
    if not sys.stdout.isatty():
        return table
    over = max(len(line) for line in table.splitlines()) - (shutil.get_terminal_size().columns - 1)
    longest = max((len(str(r[column])) for r in rows), default=0)
    if over <= 0 or longest <= len(column):
        return table
    width = max(len(column), 8, longest - over)
    return render([r | {column: _clip_middle(str(r[column]), width)} for r in rows], columns, "table")


@main.group(cls=_Group, invoke_without_command=True)
@_format_option
@_wide_option
@click.pass_context
def batches(ctx: click.Context, fmt: str, wide: bool) -> None:
    """Run history: batch id, file, status, rows, dates touched, when (local time).

    The table shows the first 8 characters of each batch id (enough for `replay`); --wide
    adds the commit order and the start time. `orderpipe batches retract BATCH_ID` takes an
    accepted batch's rows out of the KPIs.

    \b
    Examples:
      orderpipe batches
      orderpipe batches --format jsonl | grep rejected
      orderpipe batches retract 03189e47 --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return
    with _faults():
        runs = open_reader(_settings(ctx)).ledger.runs()
    if fmt == "table" and not wide:
        short = [
            {
                "batch": r.batch_id[:8],
                "file": printable(r.file),  # escaped before its width is measured
                "status": r.status,
                "rows": r.rows,
                "dates": _short_dates(r.dates),
                "finished": _local_minute(r.finished_at),
            }
            for r in runs
        ]
        _echo(_fit(short, BATCHES_SHORT, "file") if short else render(short, BATCHES_SHORT, fmt))
        return
    rows = []
    for r in runs:
        row: dict[str, Any] = {c: getattr(r, c) for c in BATCHES}
        if fmt == "table":
            row["batch_id"] = r.batch_id[:12]
            row["dates"] = f"{r.dates[0]}…{r.dates[-1]} ({len(r.dates)})" if len(r.dates) > 1 else " ".join(r.dates)
        rows.append(row)
    _echo(render(rows, BATCHES, fmt))


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="For people, or one JSON object for scripts.",
)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """The home at a glance; changes nothing.

    The home and the settings in force (and where each was given), what waits in input/,
    failed or stranded batches, files left in rejected/, the dates the KPIs reach, the last
    run and the size of each store.

    \b
    Examples:
      orderpipe status
      orderpipe status --format json | jq .waiting
    """
    from orderpipe.status import home_status, status_lines

    with _faults():
        found = home_status(_settings(ctx))
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    for line in status_lines(found):
        click.echo(printable(line))  # file names and settings: the user's text


@batches.command()
@click.argument("batch_id")
@click.option("--dry-run", is_flag=True, help="Print the dates and KPI changes it would make; change nothing.")
@click.pass_context
def retract(ctx: click.Context, batch_id: str, dry_run: bool) -> None:
    """Retract an accepted batch: its rows stop counting and every date it touched is
    recomputed (an order it corrected counts again as the batch before it had it; a catalog
    batch's products take their earlier categories again). The history shows it retracted;
    its archived file stays, and the same bytes sent again are a duplicate unless replayed
    (`orderpipe replay BATCH_ID`). Running it again finishes an interrupted one.

    \b
    Examples:
      orderpipe batches retract 03189e47 --dry-run
      orderpipe batches retract 03189e47
    """
    from orderpipe.retract import Retraction

    with _faults():
        if len(batch_id) < 8:
            raise UsageError("a batch id prefix needs at least 8 characters")
        settings = _settings(ctx)
        if settings.backend != "aws":
            require_home(settings)
        pipeline = open_pipeline(settings)
        retraction = Retraction(pipeline)
        batch = retraction.find(batch_id)
        if batch.retracted == "retracted":
            click.echo(
                printable(
                    f"orderpipe: batch {batch.batch_id[:12]} ({batch.file}) was retracted at"
                    f" {_local_minute(batch.retracted_at)}; nothing to do"
                ),
                err=True,
            )
            sys.exit(0)
        if dry_run:
            for line in _retract_preview(retraction.preview(batch)):
                click.echo(printable(line))
            sys.exit(0)
        done = retraction.retract(batch)
        if done.already:
            said = f"retracted {batch.file}  batch {batch.batch_id[:12]}: another process retracted it meanwhile"
        else:
            said = (
                f"retracted {batch.file}  batch {batch.batch_id[:12]}: its rows no longer count;"
                f" KPIs recomputed for {len(done.dates)} date(s)"
            )
        click.echo(printable(said))
    sys.exit(0)


def _retract_preview(changes: Mapping[str, tuple[DateKpis | None, DateKpis]]) -> list[str]:
    """A line per date a retraction would change: each order KPI before → after (the change),
    and the categories that would change."""
    lines = []
    for order_date, (before, after) in sorted(changes.items()):
        old, new = _kpi_values(before), _kpi_values(after)
        changed = [
            f"{name} {old.get(name, '-')} → {new.get(name, '-')}{_delta(old.get(name), new.get(name))}"
            for name in dict.fromkeys([*old, *new])
            if old.get(name) != new.get(name)
        ]
        lines.append(f"{order_date}  " + ("  ".join(changed) if changed else "unchanged"))
    return lines or ["no date would change"]


def _kpi_values(kpis: DateKpis | None) -> dict[str, object]:
    """A date's KPIs by name: the day's, then each category's as `category.name`."""
    if kpis is None:
        return {}
    values: dict[str, object] = {}
    if kpis.order is not None:
        values |= {k: v for k, v in dataclasses.asdict(kpis.order).items() if k != "order_date"}
    for c in kpis.categories:
        values |= {
            f"{c.category}.{k}": v for k, v in dataclasses.asdict(c).items() if k not in ("order_date", "category")
        }
    return values


def _delta(before: object, after: object) -> str:
    """` (+2)`, ` (-10.50)`: the change of a number; nothing when one side is missing."""
    if isinstance(before, (int, Decimal)) and isinstance(after, (int, Decimal)):
        change = after - before
        return f" ({'+' if change >= 0 else ''}{change})"
    return ""


def _say_unchanged(pipeline: Pipeline, keys: list[str], quiet: bool) -> None:
    """One line per rejected file a replay leaves alone: checked again, it would be rejected again."""
    for key in keys if not quiet else ():
        batch = pipeline.archive.batch_id_of(key)
        click.echo(
            printable(
                f"unchanged  {key}  rejected before with these bytes and settings: fix the file or the"
                f" settings and replay, or set it aside with `orderpipe dismiss {batch[:12]}`"
            ),
            err=True,
        )


@main.command()
@click.argument("batch_id")
@_results_option
@click.pass_context
def dismiss(ctx: click.Context, batch_id: str, fmt: str) -> None:
    """Set a rejected file aside: it moves to dismissed/ with its report, no replay counts it,
    and the run history shows it as dismissed. Running it again finishes an interrupted one.

    \b
    Examples:
      orderpipe dismiss 03189e47
    """
    with _faults():
        if len(batch_id) < 8:
            raise UsageError("a batch id prefix needs at least 8 characters")
        settings = _settings(ctx)
        if settings.backend != "aws":
            require_home(settings)  # nothing to dismiss in a home that is not there: make none
        pipeline = open_pipeline(settings)
        pipeline.remove_settled_reports()  # an interrupted dismissal's report, left without its file
        keys = pipeline.quarantined(batch_id)
        if not keys:
            raise UsageError(f"no rejected file for batch {batch_id} in rejected/ (`orderpipe status` lists them)")
        results = FileResults(settings, fmt, _quiet(ctx))
        for key in keys:
            began = time.monotonic()
            results.show(pipeline.dismiss(key), time.monotonic() - began)
    sys.exit(0)


def _already_accepted(pipeline: Pipeline, batch_prefix: str) -> str | None:
    """What replaying an accepted batch with this id prefix would do: nothing (as it is printed)."""
    for run in pipeline.ledger.runs():
        if run.batch_id.startswith(batch_prefix) and run.status == "accepted":
            batch = pipeline.ledger.get(run.batch_id)
            if batch is not None and batch.retracted:
                return printable(
                    f"batch {batch_prefix} ({run.file}) was retracted; a replay does not count it again:"
                    " send its orders in a new file (other bytes: its rows in another order will do)"
                )
            if batch is not None and batch.done:
                return printable(f"batch {batch_prefix} ({run.file}) is already accepted; nothing to replay")
    return None


@main.command()
@click.argument("batch_id", required=False)
@click.option("--rejected", "all_rejected", is_flag=True, help="Replay every quarantined file.")
@_results_option
@click.pass_context
def replay(ctx: click.Context, batch_id: str | None, all_rejected: bool, fmt: str) -> None:
    """Run quarantined files through the workflow again (e.g. after allowing a new category).

    \b
    Examples:
      orderpipe replay --rejected
      orderpipe replay 03189e47
    """
    with _faults():
        if bool(batch_id) == all_rejected:
            raise UsageError("give either a BATCH_ID (a prefix of 8+ characters is enough) or --rejected")
        if batch_id is not None and len(batch_id) < 8:
            raise UsageError("a batch id prefix needs at least 8 characters")
        settings = _settings(ctx)
        pipeline = open_pipeline(settings)
        pipeline.recover()
        settled = pipeline.remove_settled_reports()
        keys = pipeline.quarantined(batch_id)
        stranded = pipeline.stranded(batch_id)
        unchanged = [key for key in keys if pipeline.unchanged_since_rejected(key)]
        keys = [key for key in keys if key not in unchanged]
        _say_unchanged(pipeline, unchanged, _quiet(ctx))
        if unchanged and not keys and not stranded:
            sys.exit(EXIT_REJECTED)  # still rejected: nothing was run again
        if not keys and not stranded and settled and batch_id is None:
            if not _quiet(ctx):
                click.echo("orderpipe: an interrupted replay had counted its files; nothing is left", err=True)
            sys.exit(0)
        if not keys and not stranded:
            accepted = _already_accepted(pipeline, batch_id) if batch_id else None
            if accepted is not None:
                if not _quiet(ctx):
                    click.echo(f"orderpipe: {accepted}", err=True)
                sys.exit(0)
            raise UsageError(
                f"no quarantined file{' for batch ' + batch_id if batch_id else 's'} in rejected/"
                " and no failed batch to finish"
            )
        results = FileResults(settings, fmt, _quiet(ctx))
        code = _process_all(pipeline, iter(keys), results, _quiet(ctx), step=pipeline.replay)
        for batch in stranded:
            began = time.monotonic()
            outcome = pipeline.finish(batch)
            results.show(outcome, time.monotonic() - began)
            code = EXIT_INFRA if outcome.status == "failed" else code
    sys.exit(code)
