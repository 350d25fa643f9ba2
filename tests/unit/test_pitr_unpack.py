"""Base backups unpack only inside their directory, also on Pythons without tarfile extraction filters."""

from __future__ import annotations

import io
import tarfile

import pytest

from drills.errors import DrillsError
from drills.pitr import _refuse_unsafe_members


def archive(*members: tarfile.TarInfo) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"") if member.isfile() else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def test_a_base_backup_layout_passes(tmp_path):
    _refuse_unsafe_members(archive(tarfile.TarInfo("PG_VERSION"), tarfile.TarInfo("base/1/112"),
                                   symlink("pg_wal_link", "base/1")), tmp_path)


@pytest.mark.parametrize("member", [tarfile.TarInfo("../escape"), tarfile.TarInfo("/etc/passwd"),
                                    symlink("pg_wal", "../../outside")])
def test_members_landing_outside_are_refused(tmp_path, member):
    with pytest.raises(DrillsError, match="outside"):
        _refuse_unsafe_members(archive(member), tmp_path / "data")
