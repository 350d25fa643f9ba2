"""The operator image runs as a non-root user; the console scripts exist."""

from __future__ import annotations

import pathlib
import re
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("image", "module"), [("operator", "trading_operator"), ("runtime", "trading_runtime")])
def test_images_run_as_a_numeric_non_root_user(image, module):
    dockerfile = (ROOT / "deploy" / "docker" / f"{image}.Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "the image must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert re.search(rf'^ENTRYPOINT \["python", "-m", "{module}"\]', dockerfile, flags=re.MULTILINE)


def test_console_scripts_and_dependency_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["opsctl"] == "opsctl.main:app"
    extras = project["optional-dependencies"]
    for requirement in project["dependencies"] + [r for extra in extras.values() for r in extra]:
        if requirement.startswith("tradeops["):
            continue  # one of our own extras
        assert ">=" in requirement, f"{requirement} has no lower bound"


def test_the_emulator_ships_only_in_the_devstack_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [r for r in project["dependencies"] if r.startswith("kmock")]
    assert [r for r in extras["devstack"] if r.startswith("kmock")]
    assert any(r.startswith("tradeops[") and "devstack" in r.split("[")[1] for r in extras["dev"])
    for component in ("operator", "runtime", "tools"):
        assert not [r for r in extras[component] if r.startswith(("kmock", "tradeops[devstack"))], component
