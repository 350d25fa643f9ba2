"""Every runbook URL of the default SLO policy points at a section of docs/runbooks.md."""

from __future__ import annotations

import pathlib
import re

import pytest

from policies.loader import load_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
SLOS = load_dir().slo["default"].slos


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub gives headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("slo", SLOS, ids=[s.name for s in SLOS])
def test_runbook_url_has_a_section(slo):
    page, _, anchor = slo.runbook_url.partition("#")
    assert page.endswith("/docs/runbooks.md")
    assert anchor in github_anchors((ROOT / "docs/runbooks.md").read_text())
