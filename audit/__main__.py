"""python -m audit record: watch the Kubernetes API and append what happens to TradingSymbols to the audit
log (PostgreSQL). Runs until SIGTERM/SIGINT; logs are JSON lines.

Exit codes: 0 stopped, 2 usage, 4 no usable kubeconfig."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from kubernetes import config as k8s_config
from pythonjsonlogger.json import JsonFormatter

from audit.recorder import Recorder
from audit.store import AuditStoreError, ensure_schema
from audit.watching import ApiStream
from trading_operator.kube import load_api_client

log = logging.getLogger("audit")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="record TradingSymbol changes, revisions and operator Events")
    record.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    record.add_argument("--context")
    record.add_argument("--namespace", help="watch one namespace (default: all)")
    record.add_argument("--database-url", default=os.environ.get("TRADEOPS_DATABASE_URL"),
                        help="PostgreSQL conninfo (default: $TRADEOPS_DATABASE_URL)")
    record.add_argument("--watch-seconds", type=int, default=60, help="length of one watch request")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or $TRADEOPS_DATABASE_URL is required")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        api_client = load_api_client(args.kubeconfig, args.context)
    except (k8s_config.ConfigException, OSError) as error:
        log.error("no usable kubeconfig: %s", error)
        return 4
    try:
        ensure_schema(args.database_url)
    except AuditStoreError as error:
        log.warning("migrations not applied yet (%s): the recorder retries", error)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    recorder = Recorder(ApiStream(api_client), args.database_url, args.namespace, watch_seconds=args.watch_seconds)
    log.info("recording", extra={"namespace": args.namespace or "all"})
    recorder.run(stop)
    log.info("stopped", extra={"appended": recorder.appended, "waiting": len(recorder.pending)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
