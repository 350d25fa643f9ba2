"""Every shell script in the repository passes shellcheck, and the bootstrap installs what the tests start."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import pytest

from tests.unit.infra_harness import ROOT

BOOTSTRAP = ROOT / "scripts" / "install-system-deps.sh"


# Not the repository's own files: installed environments, tools, caches, git's internals.
SKIPPED = {".git", ".venv", ".tools", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__",
           "tradeops.egg-info", "build"}


def shell_scripts() -> list[str]:
    """The repository's shell scripts: a `.sh` name or a sh/bash shebang (no git needed: a bare machine has none)."""
    found = []
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED]
        for name in files:
            path = pathlib.Path(directory, name)
            if not path.is_file():
                continue
            with path.open("rb") as handle:
                first = handle.readline(200)
            if path.suffix == ".sh" or re.match(rb"^#!\s*/(usr/)?bin/(env\s+)?(ba)?sh\b", first):
                found.append(str(path.relative_to(ROOT)))
    return sorted(found)


def test_the_known_scripts_are_found():
    assert {"dev", ".ci/run", "scripts/install-system-deps.sh"} <= set(shell_scripts())


def test_every_shell_script_passes_shellcheck():
    checker = shutil.which("shellcheck")
    assert checker, "shellcheck is missing: ./scripts/install-system-deps.sh installs it"
    result = subprocess.run([checker, "--severity=style", *shell_scripts()], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def bootstrap_packages() -> set[str]:
    """The Debian packages the bootstrap may install (every `need+=(...)`)."""
    return {package for group in re.findall(r"need\+=\(([^)]*)\)", BOOTSTRAP.read_text()) for package in group.split()}


def test_the_bootstrap_installs_every_server_the_test_fixtures_start():
    packages = bootstrap_packages()
    # The fixtures under tests/ start these servers and call these tools; each comes from a package above.
    for package in ("postgresql", "redis-server", "prometheus", "prometheus-alertmanager", "kubernetes-client",
                    "tmux", "shellcheck", "nodejs", "npm", "libgomp1"):
        assert package in packages, package


def test_the_readme_names_exactly_the_packages_the_bootstrap_installs():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- bootstrap-packages -->", 2)
    assert len(section) == 3, "README.md marks the bootstrap's package list with <!-- bootstrap-packages -->"
    named = set(re.findall(r"`([a-z0-9][a-z0-9.+-]*)`", section[1]))
    assert named == bootstrap_packages()


@pytest.mark.parametrize("script", ["dev", ".ci/run"])
def test_the_entry_points_run_the_bootstrap(script):
    """`./dev test` and `.ci/run` reach `make install`, which runs the bootstrap."""
    text = (ROOT / script).read_text()
    assert "make" in text or "./dev" in text
    makefile = (ROOT / "Makefile").read_text()
    install = makefile.split("\ninstall:", 1)[1].split("\n\n", 1)[0]
    assert "./scripts/install-system-deps.sh" in install
    assert re.search(r"^test: install\b", makefile, flags=re.MULTILINE)
