"""The throwaway Prometheus helper: file-SD targets come and go while it runs, and their labels apply."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.prometheus_server import ThrowawayPrometheus
from tests.servers import free_port


@pytest.fixture
def exporter_port() -> Iterator[int]:
    registry = CollectorRegistry()
    Counter("tradeops_ticks", "Ticks", ["symbol"], registry=registry).labels("ES").inc(5)
    port = free_port()
    http, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    http.shutdown()
    http.server_close()
    thread.join()


def test_file_sd_targets_are_scraped_with_their_labels_and_dropped(exporter_port: int):
    server = ThrowawayPrometheus()
    server.add_file_sd_dir()
    try:
        server.start()
        server.write_targets("es", [{"targets": [f"127.0.0.1:{exporter_port}"],
                                     "labels": {"namespace": "trading", "symbol": "target-label"}}])
        [up] = server.wait_for('up{namespace="trading"} == 1')
        assert up["metric"]["symbol"] == "target-label"
        # honor_labels: the runtime's own symbol label wins over the target's.
        [ticks] = server.wait_for("tradeops_ticks_total")
        assert (ticks["metric"]["symbol"], ticks["metric"]["namespace"], ticks["value"][1]) == ("ES", "trading", "5")
        server.write_targets("es", [])
        # A dropped target's series go stale at once.
        server.wait_for('absent(up{namespace="trading"})')
    finally:
        server.destroy()
