"""The monthly records archive against a real PostgreSQL and moto's S3 over HTTP: a month of the audit log
written once under Object Lock until six years after the month (nobody can delete it), refused on a bucket
without Object Lock and when the month is already archived, and re-verifiable from the archive alone."""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from audit.chain import Entry, entry_hash
from audit.entries import NewEntry
from audit.kinds import Kind
from audit.store import append, ensure_schema
from opsctl.main import app
from tests.s3_server import ThrowawayS3
from tests.servers import ThrowawayPostgres

pytestmark = pytest.mark.integration
runner = CliRunner()
OCTOBER, NOVEMBER = datetime.datetime(2026, 10, 20, tzinfo=datetime.UTC), datetime.datetime(2026, 11, 3,
                                                                                                tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    postgres = ThrowawayPostgres().init().start()
    try:
        ensure_schema(postgres.dsn)
        append(postgres.dsn, [NewEntry(when + datetime.timedelta(hours=i), "alice via opsctl", Kind.HALT, "SPY",
                                       {"reason": f"test {i}"}, f"archive/{when:%m}/{i}")
                              for when in (OCTOBER, NOVEMBER) for i in range(3)])
        yield postgres.dsn
    finally:
        postgres.destroy()


def bucket(s3: ThrowawayS3, name: str, locked: bool) -> None:
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
    client.close()


def archive(s3: ThrowawayS3, database: str, name: str, month: str) -> object:
    return runner.invoke(app, ["audit", "archive", "--database-url", database, "--bucket", name, "--s3-endpoint",
                               s3.endpoint, "--month", month, "-o", "json"])


def test_a_month_is_archived_once_locked_for_six_years_and_verifiable(s3: ThrowawayS3, database: str):
    bucket(s3, "records-locked", locked=True)
    result = archive(s3, database, "records-locked", "2026-11")
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["entries"] == 3
    assert done["retainUntil"] == "2032-12-01T00:00:00+00:00"
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    head = client.head_object(Bucket="records-locked", Key=done["key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket="records-locked", Key=done["key"], VersionId=head["VersionId"])
    lines = [json.loads(line) for line in client.get_object(Bucket="records-locked", Key=done["key"])["Body"].read()
             .decode().splitlines()]
    client.close()
    assert [line["seq"] for line in lines] == [4, 5, 6]
    archived = [Entry(e["seq"], datetime.datetime.fromisoformat(e["recordedAt"]),
                      datetime.datetime.fromisoformat(e["occurredAt"]), e["actor"], e["kind"], e["subject"],
                      e["detail"], e["sourceKey"], e["prevHash"], e["hash"]) for e in lines]
    # The archive alone re-verifies: every entry's hash from its fields, every link to the one before.
    assert all(entry_hash(e) == e.hash for e in archived)
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(archived))

    again = archive(s3, database, "records-locked", "2026-11")
    assert again.exit_code == 6
    assert "already archived" in again.stderr


def test_a_bucket_without_object_lock_is_refused(s3: ThrowawayS3, database: str):
    bucket(s3, "records-unlocked", locked=False)
    result = archive(s3, database, "records-unlocked", "2026-10")
    assert result.exit_code == 6
    assert "has no Object Lock" in result.stderr
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    assert client.list_objects_v2(Bucket="records-unlocked").get("KeyCount") == 0
    client.close()
