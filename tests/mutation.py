"""Mutation testing of every module that decides a verdict, a staged value, a date, a category
or a KPI: `make mutate` (see docs/testing.md).

    python tests/mutation.py run            # mutmut run with the settings below
    python tests/mutation.py run show NAME  # any other mutmut command: results, show, browse…
    python tests/mutation.py report         # score per file and every survivor, from mutants/
    python tests/mutation.py changed [BASE] # only the functions changed since BASE (default main)

Run it as a script, not with `-m tests.mutation`: the tests must be imported from the copy in
mutants/, so this process must not have imported the `tests` package.

mutmut copies the project into `mutants/` and only ever changes that copy; src/ is never
edited (its `apply` command, which would, is refused here). Its settings live here rather
than in pyproject.toml so that the mutation run cannot change how the ordinary suite runs.
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import heapq
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

#: What is mutated: every module of the core, the workflow with its rooms, and catalog batches.
MUTATED = [
    "src/orderpipe/core/*.py",
    "src/orderpipe/workflow.py",
    "src/orderpipe/kpi_engine.py",
    "src/orderpipe/warehouse.py",
    "src/orderpipe/archive.py",
    "src/orderpipe/outcomes.py",
    "src/orderpipe/retract.py",
    "src/orderpipe/locate.py",
    "src/orderpipe/catalogs.py",
    # Relational grain: header and line tables on the store; table batches' stage.
    "src/orderpipe/relational.py",
    "src/orderpipe/tables.py",
    # Reading a file: the screen and staging of every shape, and the facts files they write.
    "src/orderpipe/ingest.py",
    "src/orderpipe/shaped.py",
    "src/orderpipe/facts.py",
]
#: The fast tests that exercise those files (the slow crash tests start real processes, which
#: import the original code, not the mutants, so they could not kill anything anyway).
TESTS = [
    "tests/core",
    "tests/test_workflow.py",
    "tests/test_outcomes.py",
    "tests/test_nothing_lost.py",
    "tests/test_corpus.py",
    "tests/test_bounds.py",
    "tests/test_ingest.py",
    "tests/test_facts.py",
    "tests/test_locate.py",
    "tests/test_input_shapes.py",
    # Each room of the workflow through its own API.
    "tests/test_kpi_engine.py",
    "tests/test_warehouse.py",
    "tests/test_archive.py",
    # Compaction: the fast tests, and one seed of the comparison with an uncompacted run (the
    # others and the history test take 20 s more and exercise the same lines).
    "tests/test_compaction.py::test_a_compaction_merges_the_oldest_entries_and_deletes_what_it_replaced",
    "tests/test_compaction.py::test_compaction_after_every_k_batches_changes_no_kpi[local-3]",
    "tests/test_compaction.py::test_a_recompute_whose_files_a_compaction_removed_reads_again",
    "tests/test_compaction.py::test_a_compaction_that_lost_the_race_changes_nothing",
    "tests/test_compaction.py::test_a_compaction_beaten_to_its_date_skips_it",
    "tests/test_compaction.py::test_a_date_another_worker_compacted_first_does_not_stop_the_next_dates",
    "tests/test_compaction.py::test_two_entries_merged_keep_the_later_row_of_an_order",
    # ... and its bundles, its tiers and a compaction beside a commit (each well under a second).
    "tests/test_compaction.py::test_a_big_oldest_entry_is_merged_again_only_once_the_newer_ones_have_grown[local]",
    "tests/test_compaction.py::test_a_bundle_is_deleted_when_the_last_date_it_holds_is_compacted[local]",
    "tests/test_compaction.py::test_a_due_date_brings_the_batchs_other_dates_with_half_as_many_entries",
    "tests/test_compaction.py::test_a_file_of_many_small_dates_writes_one_bundle_and_big_dates_their_own_file[local]",
    "tests/test_compaction.py::test_a_new_batch_computes_the_dates_it_alone_holds_from_its_stage[local]",
    "tests/test_compaction.py::test_an_old_bundle_no_entry_names_is_deleted_a_named_or_young_one_kept",
    "tests/test_compaction.py::test_compaction_beside_a_concurrent_commit_to_the_same_date[local]",
    "tests/test_compaction.py::test_slices_of_a_big_file_each_bundle_their_small_dates[local]",
    # The KPI engine's known orders, line grain and the catalog (the local variants: the `aws`
    # ones of these files are parametrized by hand, not by `any_pipeline`).
    "tests/test_known_orders.py",
    "tests/test_line_items.py::test_a_correction_replaces_the_whole_order_on_both_backends[local]",
    "tests/test_line_items.py::test_date_line_order_lands_on_the_next_utc_day",
    "tests/test_line_items.py::test_line_items_match_the_decimal_reference",
    "tests/test_line_items.py::test_unique_order_ids_give_the_same_kpis_under_both_grains",
    "tests/test_catalog.py::test_catalog_kpis_match_the_decimal_reference",
    "tests/test_catalog.py::test_order_grain_with_a_catalog",
    "tests/test_catalog.py::test_catalog_before_and_after_the_orders_on_both_backends[local]",
    "tests/test_catalog.py::test_a_catalog_change_reads_only_the_dates_where_changed_products_sold",
    "tests/test_catalog.py::test_a_stale_recompute_never_overwrites_kpis_of_a_newer_catalog",
    "tests/test_catalog.py::test_catalog_compaction_keeps_the_kpis",
    "tests/test_catalog.py::test_catalog_compaction_leaves_an_unfinished_catalog_batch_alone",
    "tests/test_catalog.py::test_a_catalog_commit_between_the_ledger_reads_is_read_again",
    "tests/test_catalog.py::test_a_second_compaction_beside_an_unfinished_catalog_batch_keeps_the_merged_file",
    "tests/test_catalog.py::test_recovery_of_a_committed_catalog_batch_recomputes_the_dates_it_changed",
    "tests/test_catalog.py::test_an_older_catalog_batch_finished_after_a_newer_one_still_recomputes",
    "tests/test_catalog.py::test_the_product_index_names_each_product_and_date_once",
    "tests/test_catalog.py::test_a_catalog_row_may_set_a_product_back_to_unknown",
    # The product index on DynamoDB (moto's server): one key twice in a batch write is refused.
    "tests/adapters/test_dynamodb_ledger.py::test_a_product_sold_twice_on_one_date_is_indexed_once",
    # Replay, the landing order of one name's uploads (a watcher in threads of this process) and
    # the notification of a run: the in-process tests only (the others start `orderpipe`).
    "tests/test_replay.py::test_a_replay_stopped_after_the_requeue_is_finished_by_the_same_command",
    "tests/test_replay.py::test_a_replay_stopped_after_counting_is_settled_without_a_second_record",
    "tests/test_replay.py::test_a_replay_stopped_before_its_run_was_recorded_records_it_once",
    "tests/test_replay.py::test_a_file_rejected_again_stays_quarantined_under_its_name",
    "tests/test_replay.py::test_a_damaged_report_keeps_no_file_from_being_replayed",
    "tests/test_landing_order.py::test_the_uploads_of_one_name_are_one_family",
    "tests/test_landing_order.py::test_a_run_counts_an_earlier_waiting_upload_of_the_same_name_first",
    "tests/test_landing_order.py::test_watch_counts_the_uploads_of_one_name_in_the_order_they_landed",
    "tests/test_landing_order.py::test_watch_waits_for_an_earlier_upload_of_the_name_that_is_not_ready",
    "tests/test_user_names.py::test_the_names_an_upload_waits_under",
    "tests/test_user_names.py::test_a_long_names_uploads_are_found_too",
    "tests/adapters/test_notify.py::test_pipeline_posts_success_and_failure",
    # Rejected files that settle, set aside, retracted batches and the date window, through the
    # command in this process (not the kill -9 tests: they start `orderpipe`).
    "tests/test_rejected_files_settle.py::test_a_replay_leaves_an_unchanged_rejected_file_alone",
    "tests/test_rejected_files_settle.py::test_new_settings_replay_it",
    "tests/test_rejected_files_settle.py::test_new_bytes_replay_it",
    "tests/test_rejected_files_settle.py::test_a_report_from_before_is_replayed",
    "tests/test_rejected_files_settle.py::test_a_failed_file_is_always_replayed",
    "tests/test_rejected_files_settle.py::test_dismiss_sets_a_rejected_file_aside",
    "tests/test_rejected_files_settle.py::test_two_files_of_one_name_dismissed_keep_both",
    "tests/test_retract.py",
    "tests/test_date_window.py",
    # Relational grain through the pipeline (the in-process tests; the kill -9 ones start `orderpipe`).
    "tests/test_relational.py",
    "tests/test_known_tables.py",
    "tests/test_parts.py",
    "tests/test_lab_reference.py",
    # What the stored facts mean (core/meaning.py): the settings record and its refusals.
    "tests/test_settings_record.py",
]
SETTINGS: dict[str, Any] = {
    "source_paths": ["src"],
    "only_mutate": MUTATED,
    "pytest_add_cli_args": ["-m", "not slow", "-p", "no:cacheprovider"],
    "pytest_add_cli_args_test_selection": TESTS,
    # Lines whose mutants could only change what a developer sees, never what a user gets:
    # structured log calls (the event, its fields and its hint: the outcome, the report and the
    # message the user reads are built elsewhere and tested), and the named crash points of the
    # kill -9 tests (a renamed point is a no-op outside those tests). A pattern skips the whole
    # call, however many lines its arguments take.
    "do_not_mutate_patterns": [r"^\s*log_event\(", r"^\s*checkpoint\("],
    # Polars' thread pool does not survive a fork: each mutant's tests run in a process forked
    # from a server that has collected the tests but never run one.
    "process_isolation": "forkserver",
    "forkserver_warmup": "collect",
    # `make test` runs mypy --strict on src: a mutant it refuses could never be merged.
    # (mutmut's own code carries `type: ignore` comments that strict mode would call unused.)
    "type_check_command": [
        sys.executable,
        "-m",
        "mypy",
        "src/orderpipe",
        "--output",
        "json",
        "--no-warn-unused-ignores",
    ],
}
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
#: What mutmut records when pytest could not run a mutant's tests at all (a test id it cannot
#: find, an error in its own code). mutmut calls it a timeout, which would count as killed.
COULD_NOT_RUN = {255, -1}


def _status(code: int | None, by_exit_code: dict[int | None, str]) -> str:
    return "tests could not run" if code in COULD_NOT_RUN else by_exit_code[code]


def _settings_reader() -> Callable[[str, Any], Any]:
    return lambda key, default: SETTINGS.get(key, default)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process: with its id, it names one process, never a later one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class _SameProcessTimeouts:
    """mutmut's wall-clock limit, signalling only the process it was set for.

    mutmut 3.8.1 sends SIGXCPU to a test run's process id when its time is up, also when that
    run has long ended; by then the id may belong to any other process on the machine (a CI
    run beside it died of "CPU time limit exceeded"). This sends it only while the id still
    names the process it was registered for.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str | None]] = []
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    def register(self, pid: int, timeout_s: float) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._expire, name="mutation-timeouts", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (time.time() + timeout_s, pid, _start_time(pid)))
            self._lock.notify()

    def _expire(self) -> None:
        with self._lock:
            while True:
                while not self._heap:
                    self._lock.wait()
                now = time.time()
                while self._heap and self._heap[0][0] <= now:
                    _, pid, started = heapq.heappop(self._heap)
                    if started is not None and _start_time(pid) == started:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGXCPU)
                if self._heap:
                    self._lock.wait(timeout=max(0.0, self._heap[0][0] - now))


def run(args: Sequence[str]) -> int:
    import mutmut.configuration
    import mutmut.workers.isolation
    from mutmut.__main__ import cli

    # Seen by tests/conftest.py in every process mutmut starts (they inherit the environment):
    # only the local variant of the adapter tests, fewer hypothesis examples, a fixed order.
    os.environ["MUTATION_RUN"] = "1"
    if args and args[0] == "apply":
        print("`mutmut apply` edits src/ in place; look at a mutant with `show` instead", file=sys.stderr)
        return 2
    mutmut.configuration._config_reader = _settings_reader
    mutmut.configuration.reset_config()
    # The fork server is forked from this process, so it inherits the replacement.
    mutmut.workers.isolation.register_timeout = _SameProcessTimeouts().register  # type: ignore[assignment]
    try:
        cli.main(list(args), prog_name="mutmut", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def report(root: Path = Path("mutants"), only: Sequence[str] = ()) -> int:
    """Print killed/checked/total per mutated file, then every checked mutant not killed.

    With `only` (mutant name patterns), just those mutants count.
    """
    from mutmut.stats import status_by_exit_code

    metas = sorted(root.glob("src/**/*.py.meta"))
    if not metas:
        print("no results in mutants/: run `make mutate` first", file=sys.stderr)
        return 1
    survivors: list[tuple[str, str]] = []
    print(f"{'file':<24} {'killed':>7} {'checked':>8} {'total':>6} {'score':>7}")
    for meta in metas:
        source = meta.relative_to(root / "src" / "orderpipe").as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if only:
            codes = {name: code for name, code in codes.items() if any(fnmatch.fnmatchcase(name, p) for p in only)}
        statuses = {name: _status(code, status_by_exit_code) for name, code in codes.items()}
        checked = [name for name, status in statuses.items() if status != "not checked"]
        if not codes:
            continue
        killed = sum(1 for name in checked if statuses[name] in KILLED)
        score = f"{100 * killed / len(checked):6.1f}%" if checked else "      -"
        print(f"{source:<24} {killed:>7} {len(checked):>8} {len(codes):>6} {score}")
        survivors += [(name, statuses[name]) for name in sorted(checked) if statuses[name] not in KILLED]
    if survivors:
        print(f"\n{len(survivors)} not killed (see one with: python tests/mutation.py run show NAME):")
        for name, status in survivors:
            print(f"  {name}: {status}")
    return 0


def _changed_lines(base: str, path: str) -> set[int]:
    """Lines of the working copy of `path` that differ from `base` (committed or not)."""
    diff = subprocess.run(
        ["git", "diff", "--unified=0", base, "--", path], capture_output=True, text=True, check=True
    ).stdout
    lines: set[int] = set()
    for start, count in re.findall(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", diff, flags=re.MULTILINE):
        first, n = int(start), 1 if count == "" else int(count)
        # A pure deletion (n == 0) changes the function around the line it left.
        lines.update(range(first, first + max(n, 1)))
    return lines


def changed_functions(path: str, lines: Iterable[int]) -> list[str]:
    """mutmut's name patterns for the functions and methods of `path` holding any of `lines`."""
    wanted = set(lines)
    module = path.removeprefix("src/").removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    tree = ast.parse(Path(path).read_text())
    found: list[str] = []

    def touched(node: ast.AST) -> bool:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])  # type: ignore[attr-defined]
        return any(first <= line <= (node.end_lineno or node.lineno) for line in wanted)  # type: ignore[attr-defined]

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and touched(node):
            found.append(f"{module}.x_{node.name}__mutmut_*")
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and touched(item):
                    # mutmut names a method x<U+01C1>Class<U+01C1>method.
                    found.append(f"{module}.x\u01c1{node.name}\u01c1{item.name}__mutmut_*")
    return found


def changed(base: str) -> int:
    """Mutate only what changed since `base`: the changed functions of the mutated files."""
    listed = subprocess.run(
        ["git", "diff", "--name-only", base, "--", "src"], capture_output=True, text=True, check=True
    ).stdout.split()
    files = [f for f in listed if Path(f).exists() and any(fnmatch.fnmatchcase(f, g) for g in MUTATED)]
    patterns = [p for f in files for p in changed_functions(f, _changed_lines(base, f))]
    if not patterns:
        print(f"no function of a mutated file changed since {base}")
        return 0
    print(f"mutating {len(patterns)} changed functions of {len(files)} files since {base}:")
    for pattern in patterns:
        print(f"  {pattern}")
    SETTINGS["only_mutate"] = files
    subprocess.run(["rm", "-rf", "mutants"], check=True)
    status = run(["run", *patterns])
    return report(only=patterns) or status


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "report":
        return report()
    if argv and argv[0] == "changed":
        return changed(argv[1] if len(argv) > 1 else "main")
    if argv and argv[0] == "run":
        return run(argv[1:] or ["run"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.exit(main(sys.argv[1:]))
