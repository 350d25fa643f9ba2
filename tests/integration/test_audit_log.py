"""The audit log in a real PostgreSQL: one chain across concurrent writers, runtime rows entering it by
trigger, UPDATE/DELETE/TRUNCATE refused, and `opsctl audit verify` catching an entry edited, deleted or
reordered behind the triggers' back (as a superuser can)."""

from __future__ import annotations

import concurrent.futures
import datetime
import itertools
import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from audit.chain import Anchor
from audit.entries import NewEntry
from audit.kinds import Kind
from audit.store import append, count, ensure_schema, entries, verify_log
from opsctl.main import app
from tests.servers import ThrowawayPostgres
from trading_runtime.storage.audit_schema import WRITER_ROLE

pytestmark = pytest.mark.integration
runner = CliRunner()
T0 = datetime.datetime(2026, 11, 2, 14, 30, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayPostgres]:
    postgres = ThrowawayPostgres().init().start()
    try:
        yield postgres
    finally:
        postgres.destroy()


@pytest.fixture
def dsn(server: ThrowawayPostgres) -> str:
    """A fresh database with the runtime's migrations (the audit log among them)."""
    name = f"audit_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = server.dsn.replace("dbname=postgres", f"dbname={name}")
    ensure_schema(dsn)
    return dsn


def entry(i: int, kind: Kind = Kind.SYMBOL_CHANGED) -> NewEntry:
    return NewEntry(T0 + datetime.timedelta(seconds=i), "alice via opsctl", kind, "SPY",
                    {"diff": [{"path": "spec.replicas", "before": i, "after": i + 1}], "ratio": 1e-7},
                    f"test/{i}")


def tamper(dsn: str, sql: str) -> None:
    """What a superuser can do: switch the triggers off for the session and change rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql)


def verify_cli(dsn: str, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["audit", "verify", "--database-url", dsn, "-o", "json", *args])
    return result.exit_code, json.loads(result.stdout)


def test_concurrent_writers_build_one_chain_that_verifies(dsn):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        appended = list(pool.map(lambda w: append(dsn, [entry(w * 100 + i) for i in range(25)]), range(4)))
    assert appended == [25, 25, 25, 25]
    stored = list(entries(dsn))
    assert [e.seq for e in stored] == list(range(1, 101))
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(stored))
    assert verify_log(dsn).ok
    code, data = verify_cli(dsn)
    assert (code, data["ok"], data["entries"], data["findings"]) == (0, True, 100, [])


def test_recording_the_same_source_twice_appends_once(dsn):
    assert append(dsn, [entry(1), entry(2)]) == 2
    assert append(dsn, [entry(2), entry(3)]) == 1
    assert count(dsn) == 3


def test_runtime_rows_enter_the_chain_by_trigger(dsn):
    order_id, signal_ts = uuid.uuid4(), T0
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO orders (id, ts, symbol, instrument, side, quantity, status) VALUES "
                     "(%s, %s, 'QQQ', 'QQQ-20261218-C-400', 'buy', 3, 'filled')", (order_id, signal_ts))
        conn.execute("INSERT INTO fills (id, ts, order_id, quantity, price, fee) VALUES (%s, %s, %s, 3, 4.2, 0.015)",
                     (uuid.uuid4(), signal_ts, order_id))
        conn.execute("INSERT INTO order_rejections (id, ts, symbol, instrument, side, quantity, price, reason) "
                     "VALUES (%s, %s, 'QQQ', 'QQQ-20261218-C-400', 'buy', 9000, 4.2, 'max-quantity')",
                     (uuid.uuid4(), signal_ts))
        conn.execute("INSERT INTO risk_events (ts, symbol, kind, severity) VALUES (%s, 'QQQ', 'drawdown', 'critical')",
                     (signal_ts,))
    stored = list(entries(dsn))
    assert [(e.kind, e.subject, e.actor) for e in stored] == [
        ("order", "QQQ", "trading-runtime"), ("fill", "QQQ", "trading-runtime"),
        ("order-rejected", "QQQ", "trading-runtime"), ("risk-event", "QQQ", "trading-runtime")]
    assert json.loads(stored[2].detail_text)["reason"] == "max-quantity"
    assert stored[0].occurred_at == signal_ts
    assert verify_log(dsn).ok


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
                                       "DELETE FROM audit_log WHERE seq = 1", "TRUNCATE audit_log"],
                         ids=["update", "delete", "truncate"])
def test_changing_entries_is_refused_even_to_the_owner(dsn, statement):
    append(dsn, [entry(1)])
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)
    assert count(dsn) == 1


def test_the_writers_role_may_insert_and_read_but_not_change(dsn):
    with psycopg.connect(dsn) as conn:
        grants = {row[0] for row in conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE table_name = 'audit_log' AND grantee = %s", (WRITER_ROLE,))}
    assert grants == {"INSERT", "SELECT"}


def test_an_edited_entry_is_detected(dsn):
    append(dsn, [entry(i) for i in range(5)])
    tamper(dsn, "UPDATE audit_log SET actor = 'somebody else' WHERE seq = 3")
    code, data = verify_cli(dsn)
    assert code == 7
    assert [(f["seq"], f["problem"]) for f in data["findings"]] == [(3, "edited")]


def test_an_edited_and_rehashed_entry_is_detected(dsn):
    """Recomputing the edited entry's own hash does not help: the next entry still links to the old one."""
    append(dsn, [entry(i) for i in range(5)])
    tamper(dsn, """UPDATE audit_log SET detail = '{"diff": []}', hash = encode(sha256(
        audit_field(prev_hash) || audit_field(seq::text) || audit_field(audit_micros(recorded_at))
        || audit_field(audit_micros(occurred_at)) || audit_field(actor) || audit_field(kind) || audit_field(subject)
        || audit_field('{"diff": []}'::jsonb::text) || audit_field(coalesce(source_key, ''))), 'hex') WHERE seq = 2""")
    code, data = verify_cli(dsn)
    assert code == 7
    assert [(f["seq"], f["problem"]) for f in data["findings"]] == [(2, "edited")]


def test_a_deleted_entry_is_detected(dsn):
    append(dsn, [entry(i) for i in range(5)])
    tamper(dsn, "DELETE FROM audit_log WHERE seq = 4")
    code, data = verify_cli(dsn)
    assert code == 7
    assert [(f["seq"], f["problem"]) for f in data["findings"]] == [(4, "deleted")]


def test_reordered_entries_are_detected(dsn):
    """Entries 2 and 3 swap places: every field but the position moves with the row."""
    append(dsn, [entry(i) for i in range(5)])
    tamper(dsn, "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; "
                "UPDATE audit_log SET seq = 3 WHERE seq = -2")
    code, data = verify_cli(dsn)
    assert code == 7
    assert {f["problem"] for f in data["findings"]} == {"reordered"}
    assert {f["seq"] for f in data["findings"]} >= {2, 3}


def test_a_log_cut_short_is_detected_against_an_anchor(dsn):
    append(dsn, [entry(i) for i in range(5)])
    head = runner.invoke(app, ["audit", "head", "--database-url", dsn])
    assert head.exit_code == 0
    anchor = Anchor.parse(head.stdout.strip())
    assert anchor.seq == 5
    tamper(dsn, "DELETE FROM audit_log WHERE seq = 5")
    assert verify_cli(dsn)[0] == 0, "without an anchor the chain's end cannot be known"
    code, data = verify_cli(dsn, "--anchor", str(anchor))
    assert code == 7
    assert [(f["seq"], f["problem"]) for f in data["findings"]] == [(5, "truncated")]


def test_an_unreachable_database_is_exit_code_4():
    result = runner.invoke(app, ["audit", "verify", "--database-url",
                                 "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"])
    assert result.exit_code == 4
    assert "cannot reach the audit database" in result.stderr
