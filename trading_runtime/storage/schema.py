"""The runtime's PostgreSQL schema as numbered migrations, applied at start under an advisory lock (several
runtimes of different symbols share one database and may start together)."""

from __future__ import annotations

from trading_runtime.storage.audit_schema import AUDIT_LOG

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "market data, signals, orders and risk", """
        CREATE TABLE ticks (
            ts timestamptz NOT NULL, symbol text NOT NULL, instrument text NOT NULL, kind text NOT NULL,
            bid double precision, ask double precision, bid_size double precision, ask_size double precision,
            price double precision, size double precision, seq bigint NOT NULL
        );
        CREATE INDEX ticks_symbol_ts ON ticks (symbol, ts);
        CREATE TABLE bars (
            ts timestamptz NOT NULL, symbol text NOT NULL, timeframe_s integer NOT NULL,
            open double precision NOT NULL, high double precision NOT NULL, low double precision NOT NULL,
            close double precision NOT NULL, volume double precision NOT NULL,
            PRIMARY KEY (symbol, timeframe_s, ts)
        );
        CREATE TABLE signals (
            id uuid PRIMARY KEY, ts timestamptz NOT NULL, symbol text NOT NULL, revision integer NOT NULL,
            direction smallint NOT NULL, score double precision NOT NULL, confidence double precision NOT NULL,
            features jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX signals_symbol_ts ON signals (symbol, ts);
        CREATE TABLE orders (
            id uuid PRIMARY KEY, ts timestamptz NOT NULL, symbol text NOT NULL, instrument text NOT NULL,
            side text NOT NULL CHECK (side IN ('buy', 'sell')), quantity double precision NOT NULL,
            limit_price double precision, signal_id uuid REFERENCES signals (id), status text NOT NULL
        );
        CREATE TABLE fills (
            id uuid PRIMARY KEY, ts timestamptz NOT NULL, order_id uuid NOT NULL REFERENCES orders (id),
            quantity double precision NOT NULL, price double precision NOT NULL, fee double precision NOT NULL
        );
        CREATE TABLE positions (
            ts timestamptz NOT NULL, symbol text NOT NULL, instrument text NOT NULL,
            quantity double precision NOT NULL, average_price double precision NOT NULL,
            realized_pnl double precision NOT NULL, PRIMARY KEY (symbol, instrument, ts)
        );
        CREATE TABLE risk_events (
            ts timestamptz NOT NULL, symbol text NOT NULL, kind text NOT NULL, severity text NOT NULL,
            detail jsonb NOT NULL DEFAULT '{}'
        );
    """),
    (2, "positions are a log: several snapshots may share a timestamp", """
        ALTER TABLE positions DROP CONSTRAINT positions_pkey;
        CREATE INDEX positions_symbol_instrument_ts ON positions (symbol, instrument, ts);
    """),
    (3, "orders refused by the pre-trade controls, with their reason", """
        CREATE TABLE order_rejections (
            id uuid PRIMARY KEY, ts timestamptz NOT NULL, symbol text NOT NULL, instrument text NOT NULL,
            side text NOT NULL CHECK (side IN ('buy', 'sell')), quantity double precision NOT NULL,
            price double precision, reason text NOT NULL, detail jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX order_rejections_symbol_ts ON order_rejections (symbol, ts);
    """),
    (4, "the append-only, hash-chained audit log; orders, fills, rejections and risk events enter it", AUDIT_LOG),
    (5, "positions keep the order they were written in: the latest of one timestamp is the book's", """
        ALTER TABLE positions ADD COLUMN seq bigserial;
        CREATE INDEX positions_symbol_instrument_latest ON positions (symbol, instrument, ts DESC, seq DESC);
    """),
    (6, "fencing tokens: the leadership term (Lease epoch) that last loaded each symbol's book", """
        CREATE TABLE book_epochs (symbol text PRIMARY KEY, epoch bigint NOT NULL);
    """),
)

_LOCK_KEY = 0x7472_6164_656F_7073 % 2**31  # "tradeops"


def migrate(conninfo: str) -> list[int]:
    """Apply the missing migrations; returns the versions applied now."""
    applied: list[int] = []
    import psycopg  # loaded on first use: a runtime without a database never pays its ~9 MB

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                         "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, description, sql in MIGRATIONS:
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)  # trusted, static DDL
                    conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                                 (version, description))
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
