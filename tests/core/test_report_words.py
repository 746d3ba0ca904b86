"""The one-line summary and the bounds of a report, word for word."""

from __future__ import annotations

from orderpipe.core.report import (
    MAX_FILE_NAME_CHARS,
    MAX_NAMED_COLUMNS,
    MAX_SAMPLES,
    ReportBuilder,
    ValidationReport,
    extra_columns_warning,
)


def test_a_valid_file_counts_its_rows() -> None:
    assert ValidationReport("f.csv", True, 1).summary() == "f.csv: valid, 1 row"
    assert ValidationReport("f.csv", True, 2).summary() == "f.csv: valid, 2 rows"


def invalid(codes: list[str], column: str | None = "quantity", file: str = "f.csv") -> ValidationReport:
    builder = ReportBuilder(file)
    for n, code in enumerate(codes):
        builder.add(code, n + 2, column, "v", f"problem {n}")
    return builder.build(len(codes))


def test_a_summary_names_the_first_three_kinds_of_error_and_counts_the_others() -> None:
    three = ["invalid-integer", "invalid-date", "blank-value"]
    assert invalid(three).summary() == (
        "f.csv: invalid, invalid-integer ×1 (first at line 2, quantity: problem 0; write the quantity as whole "
        "digits, e.g. 3); invalid-date ×1 (first at line 3, quantity: problem 1; write the date as YYYY-MM-DD "
        "with a real calendar day); blank-value ×1 (first at line 4, quantity: problem 2; fill in the value)"
    )
    four = invalid([*three, "invalid-boolean"]).summary()
    assert four.endswith("(first at line 4, quantity: problem 2; fill in the value); and 1 more kinds")


def test_an_error_without_a_column_says_only_its_line() -> None:
    assert invalid(["wrong-field-count"], column=None).summary() == (
        "f.csv: invalid, wrong-field-count ×1 (first at line 2: problem 0; "
        "give the row exactly as many fields as the header)"
    )


def test_a_long_file_name_is_cut_in_the_summary() -> None:
    name = "n" * 300 + ".csv"
    assert invalid(["no-rows"], file=name).summary().startswith("n" * MAX_FILE_NAME_CHARS + "…: invalid, no-rows ×1")
    assert ValidationReport(name, True, 1).summary() == "n" * MAX_FILE_NAME_CHARS + "…: valid, 1 row"


def test_a_report_keeps_the_first_samples_of_a_code_and_counts_them_all() -> None:
    report = invalid(["invalid-integer"] * (MAX_SAMPLES + 1))
    (issue,) = report.errors
    assert (issue.count, len(issue.samples), issue.samples[-1].line) == (MAX_SAMPLES + 1, MAX_SAMPLES, MAX_SAMPLES + 1)


def test_the_extra_columns_warning_names_the_first_twenty() -> None:
    names = [f"c{n}" for n in range(MAX_NAMED_COLUMNS + 1)]
    assert extra_columns_warning(names[:MAX_NAMED_COLUMNS]) == "extra columns ignored: " + ", ".join(
        repr(n) for n in names[:MAX_NAMED_COLUMNS]
    )
    assert (
        extra_columns_warning(names)
        == "extra columns ignored: " + ", ".join(repr(n) for n in names[:MAX_NAMED_COLUMNS]) + " … and 1 more"
    )


def test_a_brief_report_keeps_the_first_samples_of_each_rule_and_the_rest_whole() -> None:
    """What a run-history record holds: every rule with its count, its first BRIEF_SAMPLES."""
    from orderpipe.core.report import BRIEF_SAMPLES

    builder = ReportBuilder("f.csv")
    for line in range(2, BRIEF_SAMPLES + 4):
        builder.add("invalid-date", line, "order_date", "x", "not a date")
    builder.add("blank-value", 9, "order_id", "", "blank")
    report = builder.build(10)
    brief, full = report.brief(), report.to_dict()
    assert [len(i["samples"]) for i in brief["errors"]] == [BRIEF_SAMPLES, 1]
    assert brief["errors"][0]["samples"] == full["errors"][0]["samples"][:BRIEF_SAMPLES]
    assert [{k: v for k, v in i.items() if k != "samples"} for i in brief["errors"]] == [
        {k: v for k, v in i.items() if k != "samples"} for i in full["errors"]
    ]
    assert {k: v for k, v in brief.items() if k != "errors"} == {k: v for k, v in full.items() if k != "errors"}


def test_a_rule_without_a_sample_is_named_with_its_count_alone() -> None:
    """A rule kept only as a count (its samples dropped for a smaller record) still reads."""
    from dataclasses import replace

    report = invalid(["invalid-date"])
    bare = replace(report, errors=tuple(replace(i, samples=()) for i in report.errors))
    assert bare.summary() == "f.csv: invalid, invalid-date ×1"
