"""scripts/grant-postgres-access.sh: a checkout under a private home becomes reachable by the postgres user
(whose archive_command runs the checkout's Python when root runs the tests), granting only what is missing."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

GRANT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "grant-postgres-access.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the servers as postgres (else: a no-op)")


def as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, cwd="/")


def grant(checkout: pathlib.Path) -> str:
    result = subprocess.run([str(GRANT), str(checkout)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def home() -> Iterator[pathlib.Path]:
    """A private home like /root (mkdtemp makes it 0700)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="tradeops-home-")).resolve()
    yield path
    shutil.rmtree(path)


def test_a_checkout_under_a_private_home_gets_traverse_only_and_once(home):
    checkout = home / "project"
    (checkout / "drills").mkdir(parents=True)
    (checkout / "drills" / "wal_archive.py").write_text("")
    for path in (checkout, checkout / "drills"):
        path.chmod(0o755)
    (checkout / "drills" / "wal_archive.py").chmod(0o644)
    (home / ".secret").write_text("x")
    (home / ".secret").chmod(0o600)
    assert as_postgres("cat", str(checkout / "drills" / "wal_archive.py")).returncode != 0

    said = grant(checkout)

    # Only the home: the checkout itself is readable by others already.
    assert said == (f"grant-postgres-access: gave the postgres user traverse access "
                    f"(x, no listing) to {home} with an ACL\n")
    assert as_postgres("cat", str(checkout / "drills" / "wal_archive.py")).returncode == 0
    assert as_postgres("ls", str(home)).returncode != 0, "traverse only: the home is not listed"
    assert as_postgres("cat", str(home / ".secret")).returncode != 0
    assert "user:postgres:--x" in subprocess.run(["getfacl", "-p", str(home)], capture_output=True, text=True).stdout
    assert "postgres" not in subprocess.run(["getfacl", "-p", str(checkout)], capture_output=True, text=True).stdout
    assert grant(checkout) == "", "a second run has nothing left to grant"


def test_a_private_checkout_gets_read_access_that_new_files_inherit(home):
    checkout = home / "project"  # a umask-077 clone: nothing readable by others
    (checkout / ".venv" / "lib").mkdir(parents=True, mode=0o700)
    (checkout / ".venv" / "lib" / "boto3.py").write_text("")
    (checkout / ".venv" / "lib" / "boto3.py").chmod(0o600)

    said = grant(checkout)

    assert f"gave the postgres user read access (rX) to {checkout} with ACLs" in said, said
    assert as_postgres("cat", str(checkout / ".venv" / "lib" / "boto3.py")).returncode == 0
    (checkout / ".venv" / "lib" / "later.py").write_text("")  # what pip installs afterwards
    assert as_postgres("cat", str(checkout / ".venv" / "lib" / "later.py")).returncode == 0
    assert grant(checkout) == ""
