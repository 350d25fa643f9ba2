"""PromQL templates: jinja2 with `{{ selector }}` (label matchers of a scope) and `{{ window }}`."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jinja2

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
# Templates see selector and window only: `{{ range }}` must be an undefined name, not jinja's builtin.
_ENV.globals.clear()
_SAMPLE = {"selector": 'symbol="SPY"', "window": "5m"}


def selector(labels: Mapping[str, str]) -> str:
    """`{symbol: SPY, revision: 3}` -> `revision="3", symbol="SPY"` (values escaped for PromQL)."""
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return ", ".join(f"{key}={quoted(value)}" for key, value in sorted(labels.items()))


@functools.lru_cache(maxsize=1024)
def _compiled(template: str) -> jinja2.Template:
    # Compiling is ~100 times the cost of rendering; a policy set has a few dozen templates.
    return _ENV.from_string(template)


def render(template: str, selector_text: str, window: str) -> str:
    """The PromQL of a template for one scope and window."""
    return " ".join(_compiled(template).render(selector=selector_text, window=window).split())


def template_errors(template: str, field: str) -> list[str]:
    """`field: problem` for a template that does not render or ignores its scope."""
    try:
        rendered = render(template, _SAMPLE["selector"], _SAMPLE["window"])
    except jinja2.TemplateError as error:
        return [f"{field}: template does not render: {error}"]
    problems = []
    if "{{ selector }}" not in template.replace("{{selector}}", "{{ selector }}"):
        problems.append(f"{field}: template must use {{{{ selector }}}} to scope the query to a symbol and revision")
    if rendered.count("(") != rendered.count(")") or rendered.count("{") != rendered.count("}"):
        problems.append(f"{field}: unbalanced brackets in {rendered!r}")
    return problems
