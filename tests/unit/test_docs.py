"""The docs say only what is there: every `opsctl` command the README and docs/ name exists and runs with
`--help`, and every repository path they name exists."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from opsctl.main import app
from tests.unit.infra_harness import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "infra" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WORD = re.compile(r"^[a-z][a-z-]*(\|[a-z][a-z-]*)*$")
# opsctl's global options that take a value (they may come before the command).
VALUED = {"-n", "--namespace", "--context", "--kubeconfig", "--request-timeout", "-o", "--output"}


def _words(tokens: list[str]) -> list[list[str]]:
    """The leading command words of one documented invocation, with `a|b` alternatives expanded."""
    chains: list[list[str]] = [[]]
    skip = False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token.startswith("-"):
            skip = token in VALUED
            continue
        if not WORD.match(token):
            break
        chains = [[*chain, alternative] for chain in chains for alternative in token.split("|")]
    return [chain for chain in chains if chain]


def documented_invocations() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for document in DOCUMENTS:
        text = document.read_text()
        # `opsctl ...` in code spans, and lines of code blocks that start with it.
        for match in re.finditer(r"`(?:\.venv/bin/)?opsctl((?: +[^\s`]+)+)`|^\$? ?opsctl((?: +\S+)+)", text,
                                 flags=re.MULTILINE):
            found.update(tuple(chain) for chain in _words((match.group(1) or match.group(2)).split()))
        # The README's command table: one command per line (or `a ... | b ...`) after `opsctl [...] COMMAND`.
        block = re.search(r"```\nopsctl \[[^\n]*COMMAND[^\n]*\n(.*?)```", text, flags=re.DOTALL)
        if block:
            for line in block.group(1).splitlines():
                if not line.startswith("  ") or line.startswith("   "):
                    continue  # a description's continuation
                usage = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
                for part in usage.split(" | "):
                    found.update(tuple(chain) for chain in _words(part.split()))
    return found


def resolve(words: tuple[str, ...]) -> list[str]:
    """The command path these words name (the rest are arguments); AssertionError when a group has no such
    sub-command."""
    command = typer.main.get_command(app)  # typer's own (vendored) click types: duck-typed here
    context = command.context_class(command)
    path: list[str] = []
    for word in words:
        if not hasattr(command, "get_command"):  # a leaf: the rest are its arguments
            break
        sub = command.get_command(context, word)
        assert sub is not None, f"`opsctl {' '.join([*path, word])}`: no such command"
        path.append(word)
        command = sub
    return path


INVOCATIONS = sorted(documented_invocations())


def test_the_docs_name_many_opsctl_commands():
    assert len(INVOCATIONS) >= 30
    assert ("drill", "run") in INVOCATIONS
    assert ("report", "compliance") in INVOCATIONS


def test_a_command_that_does_not_exist_is_caught():
    with pytest.raises(AssertionError, match="no such command"):
        resolve(("drill", "explode"))
    with pytest.raises(AssertionError, match="no such command"):
        resolve(("teleport",))


@pytest.mark.parametrize("words", INVOCATIONS, ids=[" ".join(w) for w in INVOCATIONS])
def test_every_documented_opsctl_command_runs_with_help(words):
    path = resolve(words)
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


TOP = ("trading_operator", "trading_runtime", "policies", "drills", "opsctl", "infra", "devstack", "audit",
       "reports", "backtest", "deploy", "docs", "tests", "benchmarks", "scripts", "examples", ".github", ".ci")
PATH = re.compile(r"(?<![\w/.-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./*-]*)")


def named_paths(text: str) -> set[str]:
    """Repository paths a document names (in code spans, links or prose), without placeholders."""
    found = set()
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".,:;")
        if re.search(r"[<>{}$]|\.\.\.", path) or path.endswith("/."):
            continue
        found.add(path)
    return found


def exists(path: str) -> bool:
    if "*" in path:
        return any(ROOT.glob(path.rstrip("/")))
    return (ROOT / path).exists()


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_every_repository_path_the_docs_name_exists(document):
    text = document.read_text()
    missing = sorted(path for path in named_paths(text) if not exists(path))
    # Links are relative to the document.
    for link in re.findall(r"\]\(([\w./-]+)(?:#[^)]*)?\)", text):
        if "://" not in link and not (document.parent / link).exists():
            missing.append(link)
    assert missing == []


def test_a_path_that_does_not_exist_is_caught():
    paths = named_paths("see `drills/nowhere.py` and deploy/docker/tools.Dockerfile, in <dir>/x")
    assert paths == {"drills/nowhere.py", "deploy/docker/tools.Dockerfile"}
    assert [p for p in paths if not exists(p)] == ["drills/nowhere.py"]


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def test_every_make_target_the_docs_name_exists():
    named = {target for document in DOCUMENTS for target in re.findall(r"`make ([a-z][a-z-]*)", document.read_text())}
    assert {"test", "demo", "rules", "crd"} <= named
    assert named - makefile_targets() == set()
