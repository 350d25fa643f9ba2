"""The project's images and what each one can run: the programs on its PATH and the Python packages it
installs. test_infra_images.py keeps this declaration true against deploy/docker/*.Dockerfile and checks
that every container the Pulumi program defines runs only what its image holds."""

from __future__ import annotations

from infra.settings import ROOT, Settings

DOCKERFILES = ROOT / "deploy" / "docker"
POSTGRES_MAJOR = 16
"""The PostgreSQL the program deploys: the tools image is built on this major's server image, so
pg_dump/pg_restore/pg_basebackup always match the server they back up."""

PROGRAMS: dict[str, frozenset[str]] = {
    "operator": frozenset({"python", "sh", "date"}),
    "runtime": frozenset({"python", "sh", "date"}),
    "tools": frozenset({"python", "opsctl", "sh", "date", "docker-entrypoint.sh", "postgres", "initdb", "pg_ctl",
                        "pg_dump", "pg_restore", "pg_basebackup", "pg_isready", "psql", "redis-cli", "redis-server",
                        "kubectl"}),
    "mlflow": frozenset({"python", "sh", "date", "mlflow"}),
}
PACKAGES: dict[str, frozenset[str]] = {
    "operator": frozenset({"trading_operator", "policies", "trading_runtime"}),
    "runtime": frozenset({"trading_runtime"}),
    "tools": frozenset({"drills", "audit", "reports", "opsctl", "policies", "trading_operator", "trading_runtime"}),
    "mlflow": frozenset(),
}


def image_of(settings: Settings, reference: str) -> str | None:
    """Which of the project's images a container's `image` is (None: a third-party image)."""
    ours = {"operator": settings.operator_image, "runtime": settings.runtime_image, "tools": settings.tools_image,
            "mlflow": settings.mlflow_image}
    return next((name for name, image in ours.items() if image == reference), None)
