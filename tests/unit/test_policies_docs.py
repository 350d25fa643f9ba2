"""Every alert of the generated rules (and every SLO of the default policy) links to a section of
docs/runbooks.md, and every section starts with the first three commands to run — commands that exist
(opsctl's are resolved by the CLI itself)."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from opsctl.main import app
from policies.loader import load_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNBOOKS = (ROOT / "docs/runbooks.md").read_text()
ALERTS = [rule for group in yaml.safe_load((ROOT / "deploy/prometheus/rules.yml").read_text())["groups"]
          for rule in group["rules"] if "alert" in rule]
OTHER_TOOLS = {"kubectl"}
"""Commands a runbook may name besides opsctl (kubectl: Debian's kubernetes-client)."""


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def sections(markdown: str) -> dict[str, str]:
    """Second-level sections by anchor."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {anchor(title): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


SECTIONS = sections(RUNBOOKS)


def first_commands(body: str) -> list[str]:
    """The commands of a section's first shell block (comments dropped)."""
    match = re.search(r"```sh\n(.*?)```", body, flags=re.DOTALL)
    assert match, "no ```sh block of first commands"
    return [line.split("  #")[0].strip() for line in match.group(1).splitlines() if line.strip()]


def test_every_alert_of_the_generated_rules_is_checked():
    names = {rule["alert"] for rule in ALERTS}
    assert names == {"TradeopsErrorBudgetBurn", "TradeopsRuntimeAbsent", "TradeopsSymbolHalted",
                     "TradeopsSymbolPaused", "TradeopsOperatorDown"}


@pytest.mark.parametrize("url", sorted({rule["annotations"]["runbook_url"] for rule in ALERTS}
                                       | {slo.runbook_url for slo in load_dir().slo["default"].slos}))
def test_runbook_url_resolves_to_a_section_with_three_first_commands(url):
    page, _, section = url.partition("#")
    assert page.endswith("/docs/runbooks.md")
    assert section in SECTIONS, f"{url}: no section #{section} in docs/runbooks.md"
    commands = first_commands(SECTIONS[section])
    assert len(commands) == 3, commands
    for command in commands:
        words = shlex.split(command)
        if words[0] == "opsctl":
            # --help is eager: it resolves the command (an unknown one exits 2) before its arguments.
            result = CliRunner().invoke(app, [*words[1:], "--help"])
            assert result.exit_code == 0, f"{command!r}: {result.output}"
        else:
            assert words[0] in OTHER_TOOLS, f"{command!r}: not a command the runbooks may use"


def test_a_missing_section_or_block_is_caught():
    assert "no-such-alert" not in SECTIONS
    with pytest.raises(AssertionError, match="no ```sh block"):
        first_commands("prose only")
