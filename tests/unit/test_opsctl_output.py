"""opsctl's output, pure: kubectl-like tables (sized to content, never cut, wrapped at word boundaries to a
terminal), kubectl's ages, JSONPath templates, the -o and --request-timeout parsers, error budgets."""

from __future__ import annotations

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from opsctl.jsonpath import JSONPathError, execute, parse
from opsctl.kit import DRILLS_EXIT
from opsctl.options import Format, OutputFormat, parse_duration, parse_output
from opsctl.slo_cli import budget_cell
from opsctl.tables import Column, format_table, human_duration, natural_widths

# tables ------------------------------------------------------------------------------------------------------

COLUMNS = [Column("TYPE"), Column("STATUS"), Column("MESSAGE", wrap=True), Column("AGE")]
LONG = "rolling out revision 3: 1 of 2 pods ready, waiting for the analysis run to finish before promoting"


def test_columns_are_sized_to_content_with_kubectls_padding():
    lines = format_table([Column("NAME"), Column("READY"), Column("AGE")], [["spy", "2", "5m"], ["es-long", "0", "1d"]])
    assert lines == ["NAME      READY   AGE", "spy       2       5m", "es-long   0       1d"]


def test_narrow_columns_get_kubectls_minimum_cell():
    assert format_table([Column("A"), Column("B")], [["x", "y"]]) == ["A     B", "x     y"]


def test_without_a_width_nothing_wraps_and_nothing_is_cut():
    lines = format_table(COLUMNS, [["Ready", "False", LONG, "5m"]])
    assert LONG in lines[1]
    assert lines[1].endswith("5m")


@pytest.mark.parametrize("width", [80, 60, 40], ids=["80", "60", "40"])
def test_a_narrow_terminal_wraps_the_wrap_column_at_word_boundaries(width):
    lines = format_table(COLUMNS, [["Ready", "False", LONG, "5m"], ["Draining", "True", "3 open positions", "1s"]],
                         width)
    start = lines[0].index("MESSAGE")
    message = " ".join(line[start:].rsplit("   ", 1)[0].strip() if line[start:].strip() else "" for line in lines[1:-1])
    assert " ".join(message.split()) == LONG  # every word, in order, none split
    assert all(len(line) <= max(width, start + 20 + 9) for line in lines)
    assert len(lines) > 3  # it did wrap
    assert lines[-1].split() == ["Draining", "True", "3", "open", "positions", "1s"]


def test_a_word_longer_than_the_column_is_never_split():
    word = "x" * 70
    lines = format_table([Column("A"), Column("B", wrap=True)], [["1", f"short {word} end"]], 40)
    assert any(word in line for line in lines)


def test_min_widths_keep_watch_rows_aligned_with_the_first_table():
    first = format_table([Column("NAME"), Column("PHASE")], [["spy", "Progressing"]])
    widths = natural_widths([Column("NAME"), Column("PHASE")], [["spy", "Progressing"]])
    later = format_table([Column("NAME"), Column("PHASE")], [["spy", "Ready"]], header=False, min_widths=widths)
    assert later[0].index("Ready") == first[1].index("Progressing")


def test_newlines_in_cells_do_not_break_rows():
    assert format_table([Column("A"), Column("B")], [["x", "two\nlines"]]) == ["A     B", "x     two lines"]


@given(st.lists(st.lists(st.text(alphabet="abc xyz", max_size=30), min_size=3, max_size=3), max_size=5),
       st.integers(min_value=10, max_value=120))
def test_wrapping_keeps_every_word(rows, width):
    columns = [Column("A"), Column("B", wrap=True), Column("C")]
    lines = format_table(columns, rows, width)
    assert sorted(" ".join(lines[1:]).split()) == sorted(w for row in rows for cell in row for w in cell.split())


@pytest.mark.parametrize(("seconds", "expected"), [
    (-5, "<invalid>"), (0, "0s"), (119, "119s"), (120, "2m"), (150, "2m30s"), (600, "10m"), (10799, "179m"),
    (10800, "3h"), (3 * 3600 + 120, "3h2m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (49 * 3600, "2d1h"),
    (8 * 86400, "8d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y")],
    ids=["negative", "zero", "seconds", "2m", "2m30s", "10m", "minutes", "3h", "3h2m", "8h", "47h", "2d1h", "8d",
         "2y70d", "9y"])
def test_ages_read_like_kubectls(seconds, expected):
    assert human_duration(seconds) == expected


# jsonpath ----------------------------------------------------------------------------------------------------

DOC = {"kind": "List", "items": [
    {"metadata": {"name": "spy", "labels": {"app.kubernetes.io/part-of": "tradeops"}},
     "spec": {"symbol": "SPY", "replicas": 2, "paused": False},
     "status": {"phase": "Ready", "readyReplicas": 2.0,
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Draining", "status": "False"}]}},
    {"metadata": {"name": "qqq"}, "spec": {"symbol": "QQQ", "replicas": 1}, "status": {"phase": "Degraded"}}]}


@pytest.mark.parametrize(("template", "expected"), [
    ("{.kind}", "List"),
    ("{.items[*].metadata.name}", "spy qqq"),
    ("{.items[0].spec.symbol}", "SPY"),
    ("{.items[-1].metadata.name}", "qqq"),
    ("{.items[0:1].metadata.name}", "spy"),
    ('{.items[0].status.conditions[?(@.type=="Ready")].status}', "True"),
    ("{.items[?(@.spec.replicas>1)].metadata.name}", "spy"),
    ("{.items[?(@.status.readyReplicas)].metadata.name}", "spy"),
    ("{.items[0].metadata.labels['app.kubernetes.io/part-of']}", "tradeops"),
    ("{..symbol}", "SPY QQQ"),
    ("{.items[0].status.readyReplicas}", "2"),
    ("{.items[0].spec.paused}", "false"),
    ("{.items[1].spec}", '{"symbol":"QQQ","replicas":1}'),
    ("{.missing.key}", ""),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', "spy\tReady\nqqq\tDegraded\n"),
    ("{range .items}[{.metadata.name}]{end}", "[spy][qqq]"),
    ("{range .items[*]}{$.kind}/{.metadata.name} {end}", "List/spy List/qqq "),
    ("names: {.items[*].metadata.name}!", "names: spy qqq!"),
], ids=["field", "wildcard", "index", "negative-index", "slice", "filter-equals", "filter-compare", "filter-exists",
        "quoted-key", "descend", "integral-float", "bool", "map-as-json", "missing", "range-with-literals",
        "range-over-list", "root-inside-range", "text-around"])
def test_jsonpath_like_kubectl(template, expected):
    assert execute(template, DOC) == expected


@pytest.mark.parametrize("template", ["{.items[*", "{range .items[*]}{.x}", "{end}", '{"unterminated}', "{.a[x]}",
                                      "{.a.}b}"],
                         ids=["unclosed-bracket", "range-without-end", "end-without-range", "bad-literal",
                              "bad-subscript", "empty-name"])
def test_bad_templates_are_refused(template):
    with pytest.raises(JSONPathError):
        parse(template)


# option parsers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("json", OutputFormat(Format.JSON)), ("wide", OutputFormat(Format.WIDE)), ("name", OutputFormat(Format.NAME)),
    ("jsonpath={.metadata.name}", OutputFormat(Format.JSONPATH, "{.metadata.name}"))],
    ids=["json", "wide", "name", "jsonpath"])
def test_output_formats(value, expected):
    assert parse_output(value) == expected


@pytest.mark.parametrize("value", ["xml", "jsonpath", "jsonpath=", "jsonpath={.a[}"],
                         ids=["unknown", "no-template", "empty-template", "bad-template"])
def test_bad_output_formats_are_usage_errors(value):
    with pytest.raises(typer.BadParameter):
        parse_output(value)


@pytest.mark.parametrize(("value", "seconds"), [("5", 5.0), ("2.5s", 2.5), ("500ms", 0.5), ("1m", 60.0), ("0", 0.0)],
                         ids=["plain", "seconds", "milliseconds", "minutes", "no-limit"])
def test_request_timeout_durations(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


def test_a_bad_duration_is_a_usage_error():
    with pytest.raises(typer.BadParameter):
        parse_duration("soon")


# error budgets -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("remaining", "cell"), [
    (1.0, "100.00%"), (0.625, "62.50%"), (0.0, "exhausted (−0%)"), (-0.45, "exhausted (−45%)"),
    (-1.0, "exhausted (−1×)"), (-39.245, "exhausted (−39×)"), (None, "-")],
    ids=["untouched", "partly-spent", "just-spent", "overspent", "one-budget-over", "far-over", "no-events"])
def test_a_spent_budget_reads_as_exhausted(remaining, cell):
    assert budget_cell(remaining) == cell


def test_every_failure_kind_of_the_drills_has_an_exit_code():
    from drills.errors import Exit

    assert {int(e) for e in Exit} <= set(DRILLS_EXIT)
    assert {e.name: DRILLS_EXIT[int(e)].name for e in Exit} == {
        "OK": "OK", "ERROR": "ERROR", "USAGE": "USAGE", "NOT_FOUND": "NOT_FOUND", "UNREACHABLE": "UNREACHABLE",
        "CORRUPT": "REJECTED", "DRILL_FAILED": "CHECK_FAILED"}
