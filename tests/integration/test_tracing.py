"""Traces of a real runtime process reach a real OTLP receiver: MLflow's tracking server (`/v1/traces`, the
receiver that runs here) stores a decision's spans with the right parent/child links. MLflow keeps no span
links, so the links (to the revision's deploy, from a flush to the decisions it carried) are read from the
OTLP requests themselves, decoded with the OpenTelemetry protobuf definitions. Logs are ECS JSON lines."""

from __future__ import annotations

import collections
import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from mlflow import MlflowClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from devstack.processes import FeedProcess
from tests.integration.runtime_process import RuntimeProcess, wait_until
from tests.mlflow_server import ThrowawayMlflow
from tests.servers import ThrowawayPostgres

pytestmark = pytest.mark.integration
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
STRATEGY = {"strategy": {"entryScore": 0.3, "exitScore": 0.1, "minConfidence": 0.5},
            "parameters": {"flushIntervalMs": 100}}


@pytest.fixture(scope="module")
def feed(tmp_path_factory) -> Iterator[FeedProcess]:
    process = FeedProcess(tmp_path_factory.mktemp("feed"), symbols="SPY", rate=100.0, seed=3).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres().init().start()
    yield server
    server.destroy()


def test_a_decisions_spans_arrive_at_mlflow_with_their_parents(tmp_path, feed, postgres):
    mlflow = ThrowawayMlflow().start()
    try:
        client = MlflowClient(mlflow.url)
        experiment = client.create_experiment("tradeops-traces")
        runtime = RuntimeProcess(tmp_path, "SPY", feed.url, revision=7, runtime=STRATEGY, database_url=postgres.dsn,
                                 env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": mlflow.traces_endpoint,
                                      "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-mlflow-experiment-id={experiment}",
                                      # MLflow takes ~140 small traces/s on an idle machine, far fewer
                                      # on a busy one: a ratio it keeps up with, so that nothing is dropped.
                                      "OTEL_TRACES_SAMPLER_ARG": "0.05",
                                      "TRADEOPS_REVISION_TRACEPARENT": TRACEPARENT}).start()
        try:
            def traced_order():
                for trace in client.search_traces(locations=[experiment], max_results=500):
                    if any(span.name == "order" for span in trace.data.spans):
                        return trace
                return None

            trace = wait_until(traced_order, 90, "a traced order in MLflow", every=1.0)
            assert runtime.metric("tradeops_trace_spans_dropped_total") == 0.0
            assert runtime.metric("tradeops_trace_spans_exported_total") > 0
        finally:
            assert runtime.stop() == 0
    finally:
        mlflow.destroy()
    spans = {span.name: span for span in trace.data.spans}
    root = spans["tick"]
    assert root.parent_id is None
    for name in ("feed.parse", "indicators", "signal", "risk", "order", "drawdown"):
        assert spans[name].parent_id == root.span_id, name
    assert spans["fill"].parent_id == spans["order"].span_id
    assert root.attributes["tradeops.symbol"] == "SPY"
    assert root.attributes["tradeops.revision"] == 7
    lines = [json.loads(line) for line in runtime.log_path.read_text().splitlines() if line.startswith("{")]
    started = next(line for line in lines if line["message"] == "runtime started")
    assert started["service"]["name"] == "trading-runtime"
    assert started["labels"] == {"symbol": "SPY", "revision": "7"}


class OtlpCapture(http.server.ThreadingHTTPServer):
    """Keeps every span of the OTLP/HTTP protobuf requests it is sent (and answers 200, as a receiver does)."""

    def __init__(self) -> None:
        self.spans: list = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _CaptureHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _CaptureHandler(http.server.BaseHTTPRequestHandler):
    server: OtlpCapture

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.spans += [span for resource in request.resource_spans for scope in resource.scope_spans
                                  for span in scope.spans]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_ticks_link_to_the_deploy_and_flushes_link_to_the_decisions_they_wrote(tmp_path, feed, postgres):
    capture = OtlpCapture()
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    runtime = RuntimeProcess(tmp_path, "SPY", feed.url, revision=8, runtime=STRATEGY, database_url=postgres.dsn,
                             env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": capture.endpoint,
                                  "OTEL_TRACES_SAMPLER_ARG": "1",
                                  "TRADEOPS_REVISION_TRACEPARENT": TRACEPARENT}).start()
    try:
        def flushed():
            with capture.lock:
                return [s for s in capture.spans if s.name == "db.flush"]
        wait_until(lambda: len(flushed()) >= 3, 60, "three db.flush spans")
    finally:
        assert runtime.stop() == 0
        capture.shutdown()
        capture.server_close()
    by_name = collections.defaultdict(list)
    for span in capture.spans:
        by_name[span.name].append(span)
    deploy = bytes.fromhex(TRACEPARENT.split("-")[1])
    assert by_name["tick"]
    assert all([link.trace_id for link in tick.links] == [deploy] for tick in by_name["tick"])
    ticks = {tick.span_id for tick in by_name["tick"]}
    carried = [link.span_id for flush in by_name["db.flush"] for link in flush.links]
    assert carried, "flushes link to the decisions whose rows they wrote"
    assert set(carried) <= ticks
    assert len(carried) == len(set(carried)), "a decision is carried by one flush"
