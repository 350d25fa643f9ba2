"""Pulumi program under mocks: every container the program defines runs only programs and Python packages
its image holds (the backup and drill jobs need pg_dump, pg_restore, pg_basebackup, pg_ctl, redis-cli,
redis-server, kubectl: the tools image), and what each image holds is read from its Dockerfile."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
import yaml

from infra.datastores import WAL_ARCHIVE_COMMAND
from tests.unit.image_contents import DOCKERFILES, PACKAGES, POSTGRES_MAJOR, PROGRAMS, image_of
from tests.unit.infra_harness import ROOT, STACKS, built, pods
from tests.unit.test_infra_backups import settings_of

# What each base image brings (the Debian-based python and postgres images).
BASE_PROGRAMS = {
    "python": {"python", "sh", "date"},
    "postgres": {"sh", "date", "docker-entrypoint.sh", "postgres", "initdb", "pg_ctl", "pg_dump", "pg_restore",
                 "pg_basebackup", "pg_isready", "psql"},
}
# What the Debian packages the Dockerfiles install put on PATH.
APT_PROGRAMS = {"python3": {"python3"}, "python3-venv": set(), "redis-tools": {"redis-cli"},
                "redis-server": {"redis-server"}, "kubernetes-client": {"kubectl"}}
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def final_stage(dockerfile: str) -> str:
    return dockerfile.rsplit("\nFROM ", 1)[1]


def dockerfile_contents(image: str) -> tuple[set[str], set[str]]:
    """(programs on PATH, first-party packages installed) of an image, read from its Dockerfile."""
    text = (DOCKERFILES / f"{image}.Dockerfile").read_text()
    base = final_stage(text).split(None, 1)[0]
    programs = set(BASE_PROGRAMS[base.split(":")[0]])
    for packages in re.findall(r"apt-get install -y --no-install-recommends ([^&\n]+)", final_stage(text)):
        for package in packages.replace("\\", " ").split():
            programs |= APT_PROGRAMS[package]
    if "python3" in programs:  # the venv's python comes first on PATH
        assert "ENV PATH=/opt/tradeops/bin:" in text
        programs = (programs - {"python3"}) | {"python"}
    extras = re.findall(r"pip install [^\n]*\"\.\[(\w+)\]\"", text)
    if extras == ["tools"]:
        programs |= {name for name, target in SCRIPTS.items() if target.startswith("opsctl")}
    if re.search(r"pip install [^\n]*\"mlflow==", text):  # a third-party server with its console script
        programs |= {"mlflow"}
    packages = set(re.findall(r"^COPY (?!--from)(\w+) \./\w+$", text, flags=re.MULTILINE))
    return programs, packages


@pytest.mark.parametrize("image", sorted(PROGRAMS))
def test_the_declared_contents_are_what_the_dockerfile_installs(image):
    programs, packages = dockerfile_contents(image)
    assert programs == PROGRAMS[image]
    assert packages == PACKAGES[image]


def test_the_tools_image_has_the_clients_of_the_servers_major_version():
    text = (DOCKERFILES / "tools.Dockerfile").read_text()
    assert re.findall(r"^FROM postgres:(\d+)\.", text, flags=re.MULTILINE) == [str(POSTGRES_MAJOR)] * 2
    assert f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin" in text


# What each command of `python -m drills` runs besides Python (drills/postgres.py, pitr.py, redis_snapshot.py).
PROMETHEUS_LOSS = yaml.safe_load((ROOT / "drills" / "scenarios" / "prometheus-loss.yaml").read_text())["params"]
DRILL_PROGRAMS = {
    ("backup", "postgres"): {"pg_dump"},
    ("backup", "base"): {"pg_basebackup"},
    ("backup", "redis"): {"redis-cli"},
    ("run", "restore-latest"): {"pg_restore", "initdb", "pg_ctl", "postgres"},  # its scratch server
    ("run", "point-in-time"): {"pg_ctl", "postgres"},
    ("run", "redis-loss"): {"redis-server"},
    ("run", "pod-kill"): set(),
    ("run", "prometheus-loss"): {shlex.split(PROMETHEUS_LOSS["stopCommand"])[0],
                                 shlex.split(PROMETHEUS_LOSS["startCommand"])[0]},
}


def test_the_drill_program_table_names_every_binary_the_drills_call():
    called = set()
    for path in (ROOT / "drills").glob("*.py"):
        called |= set(re.findall(r"(?:pg_tool|_tool)\(\"([\w-]+)\"\)", path.read_text()))
    assert called
    assert called <= set().union(*DRILL_PROGRAMS.values())


def needs(command: list[str]) -> tuple[set[str], set[str]]:
    """(programs, first-party packages) a container command runs."""
    if command[:2] == ["sh", "-c"]:
        script = command[2]
        return {"sh", *re.findall(r"(?:exec|\$\()\s*([\w./-]+)", script)}, set()
    if command[:2] == ["python", "-m"]:
        module = command[2]
        programs = {"python"}
        if module == "drills":
            verb = command[3]
            key = (verb, command[command.index("--kind") + 1]) if verb == "backup" else (verb, command[4])
            programs |= DRILL_PROGRAMS[key]
        return programs, {module.split(".")[0]}
    return {command[0]}, set()


def containers(stack: str):
    for name, pod in pods(built(stack)):
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield name, container


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_runs_only_what_its_image_holds(stack):
    settings = settings_of(stack)
    checked = 0
    for name, container in containers(stack):
        image = image_of(settings, container["image"])
        if image is None:
            continue  # a third-party image running its own entrypoint (Redis)
        command = container.get("command")
        if command is None:  # the image's ENTRYPOINT
            text = (DOCKERFILES / f"{image}.Dockerfile").read_text()
            command = yaml.safe_load(re.findall(r"^ENTRYPOINT (.+)$", text, flags=re.MULTILINE)[-1])
        programs, packages = needs(command)
        for argument in container.get("args", []):
            if argument.startswith("archive_command="):  # PostgreSQL runs it for every WAL segment
                more_programs, more_packages = needs(shlex.split(argument.split("=", 1)[1])[:3])
                programs, packages = programs | more_programs, packages | more_packages
        assert programs <= PROGRAMS[image], f"{name}: {sorted(programs - PROGRAMS[image])} not in the {image} image"
        assert packages <= PACKAGES[image], f"{name}: {sorted(packages - PACKAGES[image])} not in the {image} image"
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("stack", STACKS)
def test_backups_drills_and_postgres_run_the_tools_image(stack):
    settings = settings_of(stack)
    images = {name: image_of(settings, c["image"]) for name, c in containers(stack)}
    jobs = [name for name in images if name.endswith("cronjob")]
    assert len(jobs) >= 5
    assert {images[name] for name in jobs} == {"tools"}
    assert images["postgres"] == "tools"
    assert images["operator"] == "operator"


def test_a_job_on_the_runtime_image_would_be_caught():
    # What the cluster ran before: pg_dump in the runtime image.
    programs, _ = needs(["python", "-m", "drills", "backup", "create", "--kind", "postgres"])
    assert not programs <= PROGRAMS["runtime"]
    assert WAL_ARCHIVE_COMMAND.startswith("python -m drills.wal_archive")
