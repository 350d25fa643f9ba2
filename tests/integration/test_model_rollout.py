"""A registered model rolled out like any other change: the real operator (kopf, on the emulated API) resolves
`spec.model` against a real MLflow server when it creates a revision; moving `champion` is a new revision that
pins the new version; a rollback returns to the revision of the old one. The runtime loads the pinned
version's ONNX artifact from the URL the revision carries."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from devstack.processes import wait_for
from modelops.export import to_onnx
from tests.integration.operator_harness import (
    condition,
    create_ts,
    deployment,
    events,
    get_ts,
    new_namespace,
    revisions,
    runtime_config,
    wait_status,
)
from tests.mlflow_server import ThrowawayMlflow
from tests.servers import free_port
from trading_operator import naming
from trading_operator.api import ModelRef
from trading_operator.conditions import Reason
from trading_operator.executor import TRADING_SYMBOLS
from trading_operator.model_registry import ModelRegistry
from trading_operator.user_requests import RequestPayload, encode
from trading_runtime.ml.features import FEATURE_NAMES
from trading_runtime.ml.serving import OnnxMetaModel

pytestmark = pytest.mark.integration
NAME = "tradeops-meta-spy"


@pytest.fixture(scope="module")
def registry() -> Iterator[ThrowawayMlflow]:
    with ThrowawayMlflow() as running:
        yield running


def register(server: ThrowawayMlflow, seed: int, name: str = NAME) -> int:
    """A small ONNX meta-model registered as a new version of NAME (its run id in the ONNX metadata)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, len(FEATURE_NAMES)))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    mlflow.set_tracking_uri(server.url)
    with mlflow.start_run() as run:
        info = mlflow.onnx.log_model(to_onnx(model, version=run.info.run_id), name="model",
                                     registered_model_name=name)
    return int(info.registered_model_version)


def set_champion(server: ThrowawayMlflow, version: int, name: str = NAME) -> None:
    MlflowClient(server.url).set_registered_model_alias(name, "champion", str(version))


def served(kube, ns: str) -> dict:
    config = runtime_config(kube, ns, "spy")
    assert config is not None
    return yaml.safe_load(config["data"][naming.CONFIG_KEY])["runtime"]["ml"]


@pytest.fixture(scope="module")
def operator_with_registry(private_stack, registry):
    process = private_stack.operator("model-operator", args=["--standalone"], env={
        "MLFLOW_TRACKING_URI": registry.url, "TRADEOPS_RESYNC_SECONDS": "2"}).start()
    try:
        yield private_stack
    finally:
        process.stop()
    crashes = [line for line in process.log().splitlines() if "Traceback" in line or "permanently" in line]
    assert not crashes, "operator handlers crashed:\n" + "\n".join(crashes[:10])


def test_champion_moves_are_revisions_and_a_rollback_returns_to_the_old_version(operator_with_registry, registry):
    kube = operator_with_registry.kube
    ns = new_namespace(kube)
    first, second = register(registry, 1), register(registry, 2)
    set_champion(registry, first)
    create_ts(kube, ns, "spy", model={"name": NAME, "alias": "champion", "pollIntervalSeconds": 1})
    status = wait_status(kube, ns, "spy", timeout=60, phase="Ready", currentRevision=1, stableRevision=1)
    assert status["model"]["version"] == first
    assert served(kube, ns)["modelVersion"] == first
    # The runtime loads what the revision pins, from the tracking server.
    loaded = OnnxMetaModel(served(kube, ns)["modelPath"])
    assert loaded.version == MlflowClient(registry.url).get_model_version(NAME, str(first)).run_id

    set_champion(registry, second)
    wait_status(kube, ns, "spy", timeout=60, phase="Ready", currentRevision=2, stableRevision=2)
    assert served(kube, ns)["modelVersion"] == second
    messages = [e["message"] for e in events(kube, ns, "spy") if e.get("reason") == "ModelVersionResolved"]
    assert f"{NAME}@champion resolved to version {second} (was version {first})" in messages

    ts = get_ts(kube, ns, "spy")
    request = RequestPayload(id="back-to-v1", revision=2, generation=ts["metadata"]["generation"], to_revision=1)
    kube.merge_patch(TRADING_SYMBOLS, ns, "spy", {"metadata": {"annotations": {
        naming.ROLLBACK_ANNOTATION: encode(request)}}})
    wait_status(kube, ns, "spy", timeout=60, currentRevision=1, abortedRevision=2)
    assert served(kube, ns)["modelVersion"] == first


def test_no_revision_until_the_model_resolves_then_one_that_pins_it(operator_with_registry, registry):
    kube = operator_with_registry.kube
    ns = new_namespace(kube)
    name = "tradeops-meta-qqq"
    create_ts(kube, ns, "qqq", symbol="QQQ", model={"name": name, "pollIntervalSeconds": 1})
    held = wait_for(lambda: (c := condition(kube, ns, "qqq", "ModelResolved")) and c["reason"] == "ModelNotFound"
                    and c, 60, "ModelResolved False: ModelNotFound")
    assert held["status"] == "False"
    assert revisions(kube, ns, "qqq") == []
    assert deployment(kube, ns, "qqq") is None
    set_champion(registry, register(registry, 6, name), name)
    status = wait_status(kube, ns, "qqq", timeout=60, phase="Ready", currentRevision=1)
    assert status["model"]["name"] == name
    assert condition(kube, ns, "qqq", "ModelResolved")["status"] == "True"


def test_the_registry_client_answers_versions_not_found_and_unreachable(registry):
    version = register(registry, 3)
    set_champion(registry, version)
    client = ModelRegistry(registry.url)
    try:
        by_alias = client.lookup(ModelRef(name=NAME), "now")
        assert by_alias is not None
        assert by_alias.version == version
        assert by_alias.failure is None
        by_version = client.lookup(ModelRef(name=NAME, version=version), "now")
        assert by_version is not None
        assert by_version.uri == by_alias.uri
        assert OnnxMetaModel(str(by_alias.uri)).version  # the URL serves the version's ONNX bytes
        missing = client.lookup(ModelRef(name=NAME, alias="nobody"), "now")
        assert missing is not None
        assert missing.failure is Reason.MODEL_NOT_FOUND
        unknown = client.lookup(ModelRef(name="tradeops-meta-none"), "now")
        assert unknown is not None
        assert unknown.failure is Reason.MODEL_NOT_FOUND
    finally:
        client.close()
    down = ModelRegistry(f"http://127.0.0.1:{free_port()}", timeout_seconds=1.0)
    answer = down.lookup(ModelRef(name=NAME), "now")
    assert answer is not None
    assert answer.failure is Reason.MODEL_REGISTRY_UNREACHABLE
    down.close()


def test_an_alias_answer_is_reused_for_the_poll_interval_then_asked_again(registry):
    first, second = register(registry, 4), register(registry, 5)
    set_champion(registry, first)
    now = [0.0]
    client = ModelRegistry(registry.url, clock=lambda: now[0])
    ref = ModelRef(name=NAME, pollIntervalSeconds=30)
    try:
        assert client.lookup(ref, "t0").version == first
        set_champion(registry, second)
        now[0] = 29.0
        assert client.lookup(ref, "t1").version == first  # within the interval: not asked
        now[0] = 30.0
        assert client.lookup(ref, "t2").version == second
    finally:
        client.close()
