"""The audit log's DDL: an append-only table whose every entry carries the hash of the one before it.

One chain however many writers there are: a BEFORE INSERT trigger takes a transaction-scoped advisory lock,
numbers the entry after the last committed one and hashes it (the lock is held until commit, so the next
writer sees this entry). UPDATE, DELETE and TRUNCATE are refused by triggers and revoked from PUBLIC and from
the writers' role `tradeops_audit_writer`; what a superuser can still do behind the triggers' back,
`opsctl audit verify` detects. The runtime's orders, fills, rejections and risk events enter the chain by
triggers in the same transaction as the row itself (nothing to miss, nothing to replay).

An entry's hash is SHA-256 over its fields in this order, each as `<byte length>:<UTF-8 bytes>`: prev_hash,
seq, recorded_at and occurred_at as integer microseconds since the epoch, actor, kind, subject, the text of
detail (jsonb's own canonical text) and source_key ('' when null). `audit.chain` recomputes it the same
way, independently of this SQL."""

from __future__ import annotations

CHAIN_LOCK_KEY = 0x6175_6469_74 % 2**31  # "audit"
WRITER_ROLE = "tradeops_audit_writer"
GENESIS_HASH = "0" * 64
RUNTIME_ACTOR = "trading-runtime"
RUNTIME_KINDS = {"orders": "order", "fills": "fill", "order_rejections": "order-rejected",
                 "risk_events": "risk-event"}
"""Runtime tables whose every row is audited, and the entry kind each becomes."""

AUDIT_LOG = f"""
    CREATE TABLE audit_log (
        seq bigint PRIMARY KEY,
        recorded_at timestamptz NOT NULL,
        occurred_at timestamptz NOT NULL,
        actor text NOT NULL,
        kind text NOT NULL,
        subject text NOT NULL,
        detail jsonb NOT NULL DEFAULT '{{}}',
        source_key text UNIQUE,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE INDEX audit_log_kind_occurred ON audit_log (kind, occurred_at);
    CREATE INDEX audit_log_occurred ON audit_log (occurred_at);

    CREATE FUNCTION audit_field(value text) RETURNS bytea LANGUAGE sql IMMUTABLE AS
        $$ SELECT convert_to(octet_length(convert_to(value, 'UTF8'))::text || ':', 'UTF8')
                  || convert_to(value, 'UTF8') $$;
    CREATE FUNCTION audit_micros(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
        $$ SELECT (extract(epoch FROM t) * 1000000)::bigint::text $$;

    CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        last_seq bigint;
        last_hash text;
    BEGIN
        PERFORM pg_advisory_xact_lock({CHAIN_LOCK_KEY});
        SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
        NEW.seq := coalesce(last_seq, 0) + 1;
        NEW.prev_hash := coalesce(last_hash, '{GENESIS_HASH}');
        NEW.recorded_at := clock_timestamp();
        NEW.occurred_at := coalesce(NEW.occurred_at, NEW.recorded_at);
        NEW.hash := encode(sha256(
            audit_field(NEW.prev_hash) || audit_field(NEW.seq::text)
            || audit_field(audit_micros(NEW.recorded_at)) || audit_field(audit_micros(NEW.occurred_at))
            || audit_field(NEW.actor) || audit_field(NEW.kind) || audit_field(NEW.subject)
            || audit_field(NEW.detail::text) || audit_field(coalesce(NEW.source_key, ''))), 'hex');
        RETURN NEW;
    END $$;
    CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();

    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_append_only();
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

    DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
            CREATE ROLE {WRITER_ROLE} NOLOGIN;
        END IF;
    END $$;
    REVOKE ALL ON audit_log FROM PUBLIC;
    GRANT SELECT, INSERT ON audit_log TO {WRITER_ROLE};
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {WRITER_ROLE};

    -- Runtime rows enter the chain with the owner's rights: a runtime needs no privilege on audit_log.
    CREATE FUNCTION audit_runtime_row() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path FROM CURRENT AS $$
    DECLARE
        body jsonb := to_jsonb(NEW);
    BEGIN
        INSERT INTO audit_log (occurred_at, actor, kind, subject, detail, source_key)
        VALUES ((body ->> 'ts')::timestamptz, '{RUNTIME_ACTOR}', TG_ARGV[0],
                coalesce(body ->> 'symbol', (SELECT symbol FROM orders WHERE id = (body ->> 'order_id')::uuid), ''),
                body, CASE WHEN body ? 'id' THEN TG_TABLE_NAME || '/' || (body ->> 'id') END);
        RETURN NULL;
    END $$;
""" + "".join(
    f"    CREATE TRIGGER {table}_audited AFTER INSERT ON {table} FOR EACH ROW "
    f"EXECUTE FUNCTION audit_runtime_row('{kind}');\n" for table, kind in RUNTIME_KINDS.items())
