"""A report as a document (sections of text, tables and charts) plus its data, rendered to Markdown, HTML
(charts as PNG files beside it) and JSON."""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

import jinja2

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Chart:
    name: str
    """File stem, unique in the report."""
    title: str
    png: bytes


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Document:
    name: str
    """File stem: `performance`, `compliance`, `cost`."""
    title: str
    summary: list[str]
    sections: list[Section]
    data: dict[str, Any]
    """The figures, as `--json` prints them."""

    def chart_file(self, chart: Chart) -> str:
        return f"{self.name}-{chart.name}.png"


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", "", *doc.summary, ""]
    for section in doc.sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        for table in section.tables:
            lines.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
            lines.append("|" + "---|" * len(table.columns))
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
            lines.append("")
        for chart in section.charts:
            lines += [f"![{chart.title}]({doc.chart_file(chart)})", ""]
    return "\n".join(lines).rstrip() + "\n"


def html(doc: Document) -> str:
    return _ENV.get_template("report.html.j2").render(doc=doc)


def dumps(doc: Document) -> str:
    return json.dumps(doc.data, indent=2, sort_keys=True, default=str) + "\n"


def write(doc: Document, directory: pathlib.Path) -> list[pathlib.Path]:
    """`<name>.md`, `<name>.html`, `<name>.json` and the charts' PNGs in `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for section in doc.sections:
        for chart in section.charts:
            path = directory / doc.chart_file(chart)
            path.write_bytes(chart.png)
            written.append(path)
    for suffix, text in (("md", markdown(doc)), ("html", html(doc)), ("json", dumps(doc))):
        path = directory / f"{doc.name}.{suffix}"
        path.write_text(text)
        written.append(path)
    return written
