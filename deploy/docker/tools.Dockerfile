# The tools image: backups, WAL archiving and DR drills (`python -m drills`), the audit recorder and archive,
# the reports and opsctl, with the PostgreSQL 16 client and server binaries of the server it backs up
# (pg_dump, pg_restore, pg_basebackup; initdb/pg_ctl/postgres for the drills' scratch and recovered servers),
# redis-cli and redis-server (Redis snapshots, the redis-loss drill) and kubectl (the prometheus-loss drill).
# It is also the PostgreSQL server's image (the official postgres image plus this package), so the
# server's `archive_command = python -m drills.wal_archive push ...` finds the package and the client and
# server majors always match. Build from the repository root:
#   docker build -f deploy/docker/tools.Dockerfile -t tradeops-tools .
FROM postgres:16.4-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/tradeops
WORKDIR /src
COPY pyproject.toml README.md ./
COPY audit ./audit
COPY drills ./drills
COPY opsctl ./opsctl
COPY policies ./policies
COPY reports ./reports
COPY trading_operator ./trading_operator
COPY trading_runtime ./trading_runtime
RUN /opt/tradeops/bin/pip install --no-cache-dir ".[tools]"

FROM postgres:16.4-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 redis-tools redis-server kubernetes-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/tradeops /opt/tradeops
RUN groupadd --system --gid 10001 tradeops && useradd --system --uid 10001 --gid 10001 --no-create-home tradeops
# The venv's python and console scripts first, then PostgreSQL's server binaries (initdb, pg_ctl, postgres).
ENV PATH=/opt/tradeops/bin:/usr/lib/postgresql/16/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TRADEOPS_PG_BIN=/usr/lib/postgresql/16/bin MPLCONFIGDIR=/tmp/matplotlib
# Jobs run as 10001 (their pods say so too); the PostgreSQL StatefulSet runs it as the image's postgres user
# (999) with the base image's entrypoint.
USER 10001:10001
