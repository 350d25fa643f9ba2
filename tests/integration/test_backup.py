"""Backups against real servers: PostgreSQL under write load → S3 (moto over HTTP) → verify → restore into
a new database; corrupted, incomplete and missing backups; Redis snapshots; WAL archiving; retention."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
import time

import boto3
import botocore.exceptions
import psycopg
import pytest
import redis

from drills import backups, postgres, redis_snapshot, wal_archive
from drills.errors import DrillsError, Exit
from drills.manifest import compare_tables
from drills.s3 import S3Store
from policies.recovery import Retention
from tests.integration.dr_support import (
    ArchivingPostgres,
    WriteLoad,
    make_bucket,
    prepare,
    settings_for,
)
from tests.servers import ThrowawayPostgres, ThrowawayRedis, free_port


@pytest.fixture
def bucket(s3, request):
    name = "b-" + request.node.name.lower().replace("_", "-")[:50]
    return make_bucket(s3, name)


@pytest.fixture
def pg():
    server = ThrowawayPostgres().init().start()
    prepare(server.dsn)
    try:
        yield server
    finally:
        server.destroy()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drills", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def env_for(bucket, dsn: str | None = None) -> dict[str, str]:
    env = {"TRADEOPS_BACKUP_BUCKET": bucket.bucket, "TRADEOPS_S3_ENDPOINT": bucket.endpoint or ""}
    if dsn:
        env["DATABASE_URL"] = dsn
    return env


def databases(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_backup_under_write_load_restores_exactly_the_snapshot(pg, bucket):
    settings = settings_for(bucket, pg.dsn)
    with WriteLoad(pg.dsn, interval=0.01, ticks=200) as load, S3Store(bucket) as store:
        load.wait_committed(20)
        manifest = backups.create_postgres(settings, store)
        load.wait_committed(manifest.tables["fills"].rows + 20)  # the source moves on after the snapshot
        assert backups.verify(store, manifest) == []
        listed, incomplete = backups.list_backups(store)
        assert [m.id for m in listed] == [manifest.id]
        assert incomplete == []
        dsn = backups.restore_postgres(settings, store, manifest, "restored_copy")
    assert manifest.tables["ticks"].rows >= 20 * 200
    assert manifest.tables["fills"].checksum is not None
    assert manifest.source.lsn
    assert manifest.encryption == "AES256"
    with psycopg.connect(dsn) as conn:
        restored = postgres.table_stats(conn)
        assert compare_tables(manifest.tables, restored) == []
        assert all(check.ok for check in postgres.invariant_checks(conn))
    with psycopg.connect(pg.dsn) as conn:
        assert postgres.table_stats(conn)["fills"].rows > manifest.tables["fills"].rows
    head = boto3.client("s3", endpoint_url=bucket.endpoint, region_name="us-east-1")
    try:
        assert head.head_object(Bucket=bucket.bucket, Key=manifest.objects[0].key)["ServerSideEncryption"] == "AES256"
    finally:
        head.close()


def test_corrupted_backup_fails_verify_and_restore_refuses_it(pg, bucket):
    settings = settings_for(bucket, pg.dsn)
    with WriteLoad(pg.dsn, interval=0.0, ticks=500) as load:
        load.wait_committed(10)
    with S3Store(bucket) as store:
        manifest = backups.create_postgres(settings, store)
        key = manifest.objects[0].key
        data = bytearray(store.get_bytes(key))
        data[len(data) // 2] ^= 0xFF
        store.put_bytes(key, bytes(data))
        problems = backups.verify(store, manifest)
    assert len(problems) == 1
    assert "corrupted" in problems[0]
    verify = cli("backup", "verify", manifest.id, env=env_for(bucket, pg.dsn))
    assert verify.returncode == Exit.CORRUPT
    assert f"backup {manifest.id} failed verification" in verify.stderr
    assert "corrupted" in verify.stderr
    assert "Traceback" not in verify.stderr
    restore = cli("backup", "restore", manifest.id, "--into", "never_created", env=env_for(bucket, pg.dsn))
    assert restore.returncode == Exit.CORRUPT
    assert "refusing to restore" in restore.stderr
    assert "never_created" not in databases(pg.dsn)
    taken = cli("backup", "restore", manifest.id, "--into", "postgres", env=env_for(bucket, pg.dsn))
    assert taken.returncode == Exit.CORRUPT  # verification comes first, before any database is touched


def test_restore_never_writes_into_an_existing_database(pg, bucket):
    with S3Store(bucket) as store:
        backups.create_postgres(settings_for(bucket, pg.dsn), store)
    taken = cli("backup", "restore", "latest", "--into", "postgres", env=env_for(bucket, pg.dsn))
    assert taken.returncode == Exit.USAGE
    assert "database postgres already exists: a restore only goes into a new database" in taken.stderr
    fresh = cli("backup", "restore", "latest", "--into", "fresh", "-o", "json", env=env_for(bucket, pg.dsn))
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["database"] == "fresh"


def test_incomplete_and_missing_backups_are_clear_errors(pg, bucket):
    settings = settings_for(bucket, pg.dsn)
    empty = cli("backup", "restore", "latest", env=env_for(bucket, pg.dsn))
    assert empty.returncode == Exit.NOT_FOUND
    assert "no postgres backup in s3://" in empty.stderr
    absent = cli("backup", "verify", "postgres-20200101T000000.000Z", env=env_for(bucket, pg.dsn))
    assert absent.returncode == Exit.NOT_FOUND
    assert "no backup postgres-20200101T000000.000Z" in absent.stderr
    with S3Store(bucket) as store:
        truncated = backups.create_postgres(settings, store)
        key = truncated.objects[0].key
        store.put_bytes(key, store.get_bytes(key)[:-100])
        assert "incomplete or altered" in backups.verify(store, truncated)[0]
        lost = backups.create_postgres(settings, store)
        store.delete([lost.objects[0].key])
        assert backups.verify(store, lost) == [f"{lost.objects[0].key}: missing (incomplete backup)"]
        no_manifest = backups.create_postgres(settings, store)
        store.delete([key.rsplit("/", 1)[0].replace(truncated.id, no_manifest.id) + "/manifest.json"])
        with pytest.raises(DrillsError, match="incomplete: it has no manifest") as raised:
            backups.find(store, no_manifest.id)
        assert raised.value.code is Exit.CORRUPT
        _, incomplete = backups.list_backups(store)
        assert incomplete == [no_manifest.id]


def test_redis_snapshot_restores_into_a_new_server(bucket, tmp_path):
    source = ThrowawayRedis().start()
    try:
        conn = redis.Redis.from_url(source.url)
        with conn:
            for i in range(500):
                conn.set(f"tradeops:cache:SPY:quote:{i}", "x" * 50)
            conn.hset("tradeops:positions", mapping={"SPY": "{}", "QQQ": "{}"})
            conn.xadd("tradeops:signals", {"data": "{}"})
        settings = settings_for(bucket, redis_url=source.url)
        with S3Store(bucket) as store:
            manifest = backups.create_redis(settings, store)
            assert backups.verify(store, manifest) == []
            rdb = tmp_path / "dump.rdb"
            backups.download_verified(store, manifest.objects[0], rdb)
        restored = redis_snapshot.start_from(rdb)
        try:
            assert redis_snapshot.keyspace(restored.url) == manifest.tables
            assert manifest.tables["db0"].rows == 502
        finally:
            restored.stop()
    finally:
        source.stop()


def test_wal_archive_is_idempotent_and_fetch_checks_the_sha(bucket, tmp_path):
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(os.urandom(4096))
    with S3Store(bucket) as store:
        assert wal_archive.push(store, segment, segment.name) == "archived"
        assert wal_archive.push(store, segment, segment.name) == "already archived"
        other = tmp_path / "other"
        other.write_bytes(b"different")
        with pytest.raises(DrillsError, match="refusing to overwrite"):
            wal_archive.push(store, other, segment.name)
        assert wal_archive.fetch(store, segment.name, tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == segment.read_bytes()
        assert not wal_archive.fetch(store, "000000010000000000000009", tmp_path / "none")
        key = "tradeops/wal/" + segment.name
        store.client.put_object(Bucket=store.bucket, Key=key, Body=b"rot", Metadata={"sha256": "0" * 64})
        with pytest.raises(DrillsError, match="corrupted"):
            wal_archive.fetch(store, segment.name, tmp_path / "bad")
        assert not (tmp_path / "bad").exists()


def test_wal_fetch_with_a_spool_prefetches_the_following_segments(bucket, tmp_path):
    # Recovery asks for one segment at a time: the first fetch starts a background prefetcher that downloads
    # (and verifies) the next ones, so later fetches only move a file, with S3 not even reachable.
    names = [f"0000000100000000000000{n:02X}" for n in range(1, 6)]  # 1 MB segments: 4096 per log
    segments = {name: os.urandom(1024 * 1024) for name in names}
    with S3Store(bucket) as store:
        for name, data in segments.items():
            (tmp_path / name).write_bytes(data)
            wal_archive.push(store, tmp_path / name, name)
    spool, pg_wal = tmp_path / "spool", tmp_path / "pg_wal"
    pg_wal.mkdir()

    def fetch(name: str, endpoint: str = bucket.endpoint) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "drills.wal_archive", "fetch", "--bucket", bucket.bucket,
                               "--endpoint", endpoint, "--spool", str(spool), "--prefetch", "3", name,
                               str(pg_wal / "RECOVERYXLOG")], capture_output=True, timeout=60)

    assert fetch(names[0]).returncode == 0
    deadline = time.monotonic() + 60
    while {p.name for p in spool.glob("0*")} != set(names[1:4]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {p.name for p in spool.glob("0*")} == set(names[1:4])  # three ahead, no more
    unreachable = f"http://127.0.0.1:{free_port()}"
    for name in names[1:3]:
        done = fetch(name, unreachable)
        assert done.returncode == 0, done.stderr
        assert (pg_wal / "RECOVERYXLOG").read_bytes() == segments[name]
    # Recovery at 3: the prefetcher drops what it passed and fetches up to the archive's end (5), then exits.
    while {p.name for p in spool.glob("0*")} != set(names[3:]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {p.name for p in spool.glob("0*")} == set(names[3:])
    assert fetch("000000010000000000000006").returncode == 1  # the end of the archive, as without a spool
    assert wal_archive.following("0000000100000000000000FF", 16 * 1024 * 1024, 2) == [
        "000000010000000100000000", "000000010000000100000001"]  # 256 segments of 16 MB per log
    assert wal_archive.following("00000002.history", 16 * 1024 * 1024, 2) == []


def test_retention_deletes_old_backups_and_the_wal_only_they_needed(bucket):
    server = ArchivingPostgres(bucket).init().start()
    try:
        prepare(server.dsn)
        settings = settings_for(bucket, server.dsn)
        with S3Store(bucket) as store:
            old = backups.create_base(settings, store)
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                for _ in range(3):
                    conn.execute("SELECT pg_switch_wal()")
                    conn.execute("INSERT INTO risk_events VALUES (now(), 'SPY', 'k', 'info', '{}')")
            new = backups.create_base(settings, store)
            plan = backups.retention_plan(store, Retention(keep_last=1, keep_days=0),
                                          datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1))
            assert plan.delete_backups == (old.id,)
            assert plan.keep_backups == (new.id,)
            assert plan.delete_wal
            assert all(segment < new.source.start_wal for segment in plan.delete_wal)
            deleted = backups.apply_retention(store, plan)
            manifests, _ = backups.list_backups(store)
            remaining_wal = [k for k, _ in store.objects("tradeops/wal/")]
    finally:
        server.destroy()
    assert deleted == 2 + len(plan.delete_wal)
    assert [m.id for m in manifests] == [new.id]
    assert not any(k.rsplit("/", 1)[-1] in plan.delete_wal for k in remaining_wal)


def test_opsctl_runs_the_same_commands_with_its_error_prefix_and_output(bucket, tmp_path):
    env = {**os.environ, **env_for(bucket)}
    listed = subprocess.run([sys.executable, "-m", "opsctl", "-o", "json", "drill", "list"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [d["name"] for d in json.loads(listed.stdout)] == [
        "pod-kill", "point-in-time", "prometheus-loss", "redis-loss", "restore-latest"]
    missing = subprocess.run([sys.executable, "-m", "opsctl", "backup", "verify", "latest"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == Exit.NOT_FOUND
    assert missing.stderr.startswith("opsctl: error: no postgres backup in s3://")
    config = tmp_path / "drills.yaml"
    config.write_text("bucket: other\ndatabaseUrl: postgresql://user:secret@db/trading\n")
    refused = cli("--config", str(config), "backup", "list", env=env_for(bucket))
    assert refused.returncode == Exit.USAGE
    assert "unknown or secret-bearing keys ['databaseUrl']" in refused.stderr


def test_unreachable_s3_is_exit_4():
    done = cli("backup", "list", env={"TRADEOPS_BACKUP_BUCKET": "x", "TRADEOPS_S3_ENDPOINT":
                                      f"http://127.0.0.1:{free_port()}"})
    assert done.returncode == Exit.UNREACHABLE
    assert "S3 endpoint unreachable" in done.stderr


def test_snapshot_keys_go_back_under_what_the_live_writers_rewrote():
    snapshot, live = ThrowawayRedis().start(), ThrowawayRedis().start()
    try:
        with redis.Redis.from_url(snapshot.url, decode_responses=True) as old:
            first = old.xadd("tradeops:signals", {"data": "old"}, id="1700000000000-0")
            old.xgroup_create("tradeops:signals", "audit", id="0")
            old.rpush("tradeops:returns:SPY", "0.1", "0.2")
            old.hset("tradeops:positions", mapping={"SPY": "old", "QQQ": "old"})
            old.set("tradeops:cache:ES:quote:ES", "{}", ex=300)
        with redis.Redis.from_url(live.url, decode_responses=True) as new:
            new.xadd("tradeops:signals", {"data": "new"}, id="1700000000001-0")  # later; auto ids may share a ms
            new.rpush("tradeops:returns:SPY", "0.3")
            new.hset("tradeops:positions", "SPY", "new")
            outcome = redis_snapshot.restore_keys(snapshot.url, live.url)
            entries = new.xrange("tradeops:signals")
            groups = new.xinfo_groups("tradeops:signals")
            returns = new.lrange("tradeops:returns:SPY", 0, -1)
            book = new.hgetall("tradeops:positions")
            ttl = new.ttl("tradeops:cache:ES:quote:ES")
    finally:
        snapshot.stop()
        live.stop()
    assert outcome == redis_snapshot.Restored(restored=1, merged=2, kept=1)
    assert [fields["data"] for _, fields in entries] == ["old", "new"]
    assert entries[0][0] == first
    assert [g["name"] for g in groups] == ["audit"]
    assert returns == ["0.1", "0.2", "0.3"]
    assert book == {"SPY": "new"}  # the live book is the runtimes': a symbol nobody runs is not brought back
    assert 0 < ttl <= 300


class LostAnswer:
    """CompleteMultipartUpload that does its work, then loses its answer (a read timeout under load): what
    botocore retries into a 500 or NoSuchUpload, the upload being gone."""

    def __init__(self, client, assemble: bool) -> None:
        self.client, self.assemble = client, assemble

    def complete_multipart_upload(self, **kwargs):
        if self.assemble:
            self.client.complete_multipart_upload(**kwargs)
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "InternalError", "Message": "retried after the answer was lost"}},
            "CompleteMultipartUpload")

    def close(self) -> None:
        self.client.close()


@pytest.mark.parametrize("assembled", [True, False], ids=["assembled", "not-assembled"])
def test_an_upload_whose_completion_answer_was_lost_is_judged_by_the_object(bucket, assembled):
    data = os.urandom(6 * 1024 * 1024 + 17)  # two parts of 5 MiB and a short one
    key = f"{'assembled' if assembled else 'not-assembled'}/base.tar"
    with S3Store(bucket) as store:
        store.assembler = LostAnswer(store.assembler, assemble=assembled)
        if assembled:
            stored = store.upload_stream(key, io.BytesIO(data), part_size=5 * 1024 * 1024)
            assert stored.size == len(data)
            assert store.get_bytes(key) == data
        else:
            with pytest.raises(DrillsError, match="InternalError"):
                store.upload_stream(key, io.BytesIO(data), part_size=5 * 1024 * 1024)
            assert store.metadata(key) is None
