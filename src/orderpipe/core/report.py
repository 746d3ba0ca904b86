"""The validation report every file gets: verdict, counts and located samples."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from orderpipe.core.rules import ERROR_CODES, MAX_VALUE_CHARS, clip, shown

__all__ = [
    "BRIEF_SAMPLES",
    "MAX_FILE_NAME_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_NAMED_COLUMNS",
    "MAX_SAMPLES",
    "MAX_VALUE_CHARS",
    "Issue",
    "ReportBuilder",
    "Sample",
    "ValidationReport",
    "extra_columns_warning",
]

MAX_SAMPLES = 100
#: Every user-supplied string in a report is bounded, so a report stays small whatever the file:
#: values and names by MAX_VALUE_CHARS, a sample's message (which quotes them) as a backstop,
#: the number of extra columns a warning names, and the file name a summary repeats.
MAX_MESSAGE_CHARS = 400
MAX_NAMED_COLUMNS = 20
MAX_FILE_NAME_CHARS = 200
#: Samples per rule kept in the run history (the full report keeps MAX_SAMPLES beside the file).
BRIEF_SAMPLES = 5


def extra_columns_warning(extra: list[str]) -> str:
    """The warning naming ignored columns: the first MAX_NAMED_COLUMNS, each clipped."""
    named = ", ".join(shown(n) for n in extra[:MAX_NAMED_COLUMNS])
    more = f" … and {len(extra) - MAX_NAMED_COLUMNS} more" if len(extra) > MAX_NAMED_COLUMNS else ""
    return f"extra columns ignored: {named}{more}"


@dataclass(frozen=True, slots=True)
class Sample:
    """Where one instance of a broken rule is: 1-based line (header = line 1) and column."""

    line: int
    column: str | None
    value: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "value": self.value, "message": self.message}


@dataclass(frozen=True, slots=True)
class Issue:
    """One rule broken `count` times, with up to MAX_SAMPLES located examples."""

    code: str
    count: int
    samples: tuple[Sample, ...]

    @property
    def hint(self) -> str:
        return ERROR_CODES.get(self.code, "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "count": self.count,
            "hint": self.hint,
            "samples": [s.to_dict() for s in self.samples],
        }


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The verdict on one file. `rows` counts data rows (blank lines excluded)."""

    file: str
    valid: bool
    rows: int
    errors: tuple[Issue, ...] = ()
    warnings: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    shape: tuple[str, ...] = ()  # which column fed what, when a shape is configured

    def explained(self, shape: tuple[str, ...]) -> ValidationReport:
        """The same report, saying how the configured shape read the file."""
        return replace(self, shape=shape)

    @property
    def verdict(self) -> str:
        return "valid" if self.valid else "invalid"

    def summary(self) -> str:
        """One line a person can act on: the first problems, each with file, line and fix."""
        file = clip(self.file, MAX_FILE_NAME_CHARS)
        if self.valid:
            return f"{file}: valid, {self.rows} row{'' if self.rows == 1 else 's'}"
        parts = []
        for issue in self.errors[:3]:
            first = issue.samples[0] if issue.samples else None
            column = f", {first.column}" if first and first.column else ""
            where = f" (first at line {first.line}{column}: {first.message}; {issue.hint})" if first else ""
            parts.append(f"{issue.code} ×{issue.count}{where}")
        more = f"; and {len(self.errors) - 3} more kinds" if len(self.errors) > 3 else ""
        return f"{file}: invalid, " + "; ".join(parts) + more

    def brief(self) -> dict[str, Any]:
        """The report with BRIEF_SAMPLES samples per rule: small enough for a run-history record
        (a DynamoDB item), enough for a person to see what to fix."""
        full = self.to_dict()
        for issue in full["errors"]:
            issue["samples"] = issue["samples"][:BRIEF_SAMPLES]
        return full

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "verdict": self.verdict,
            "rows": self.rows,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": list(self.warnings),
            **({"shape": list(self.shape)} if self.shape else {}),
        }


@dataclass
class ReportBuilder:
    """Accumulates issues while a file streams by; memory is bounded by MAX_SAMPLES per code."""

    file: str
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, code: str, line: int, column: str | None, value: str | None, message: str) -> None:
        self.counts[code] = self.counts.get(code, 0) + 1
        kept = self.samples.setdefault(code, [])
        if len(kept) < MAX_SAMPLES:
            value = None if value is None else clip(value)
            column = None if column is None else clip(column)
            kept.append(Sample(line, column, value, clip(message, MAX_MESSAGE_CHARS)))

    @property
    def has_errors(self) -> bool:
        return bool(self.counts)

    def build(self, rows: int, dates: tuple[str, ...] = ()) -> ValidationReport:
        issues = tuple(Issue(code, n, tuple(self.samples[code])) for code, n in self.counts.items())
        return ValidationReport(
            file=self.file,
            valid=not issues,
            rows=rows,
            errors=issues,
            warnings=tuple(self.warnings),
            dates=dates if not issues else (),
        )
