"""`config.broker`: its validation, the pool it becomes (keys only from the environment a Secret fills), and the
Deployment, ConfigMap and NetworkPolicy the operator renders for it."""

from __future__ import annotations

import argparse

import pytest
import yaml
from pydantic import ValidationError

from tests.unit.test_builders import children, revision_of, spec
from trading_operator.builders import CREDENTIALS_SECRET, render_runtime_config
from trading_runtime.config import BrokerApi, RenderedConfig, RuntimeConfig, Switches, api_key_env
from trading_runtime.execution.http_broker import HttpBroker
from trading_runtime.execution.paper import PaperBroker
from trading_runtime.feeds.client import FeedClient
from trading_runtime.gateway.settings import MissingKeyError, pool_settings
from trading_runtime.main import Runtime, broker_warnings

BROKER = {
    "endpoints": ["https://broker-a.example/api", "http://10.0.0.7:8080"],
    "keys": [
        {"name": "alpha", "secretKeyRef": {"name": "broker-keys", "key": "alpha"}, "ratePerSecond": 20, "burst": 4},
        {"name": "beta-2", "secretKeyRef": {"name": "broker-keys", "key": "beta"}, "ratePerSecond": 5},
    ],
    "maxAttempts": 4,
}


def broker(**overrides) -> BrokerApi:
    return BrokerApi.model_validate({**BROKER, **overrides})


def test_no_broker_is_the_default_paper_path():
    assert RuntimeConfig().broker is None


@pytest.mark.parametrize(("overrides", "message"), [
    ({"endpoints": []}, "at least 1 item"),
    ({"endpoints": ["broker.example"]}, "should match pattern"),
    ({"keys": []}, "at least 1 item"),
    ({"keys": [{**BROKER["keys"][0], "ratePerSecond": 0}]}, "greater than 0"),
    ({"keys": [BROKER["keys"][0], {**BROKER["keys"][1], "name": "alpha"}]}, "distinct"),
    ({"keys": [{**BROKER["keys"][0], "secret": "s3cr3t"}]}, "Extra inputs are not permitted"),
], ids=["no-endpoint", "not-a-url", "no-key", "zero-rate", "same-name", "a-value-in-the-config"])
def test_invalid_broker_configs_are_refused(overrides, message):
    with pytest.raises(ValidationError, match=message):
        broker(**overrides)


def test_key_values_come_from_the_environment_only():
    env = {api_key_env("alpha"): "a-secret", "TRADEOPS_API_KEY_BETA_2": "b-secret"}
    settings = pool_settings(broker(), env)
    assert [(k.name, k.secret.get_secret_value(), k.rate_per_second, k.burst) for k in settings.keys] == [
        ("alpha", "a-secret", 20.0, 4), ("beta-2", "b-secret", 5.0, 1)]
    assert settings.endpoints == BROKER["endpoints"]
    assert settings.max_attempts == 4
    assert "a-secret" not in repr(settings)


def test_a_missing_key_value_names_the_secret_it_should_come_from():
    with pytest.raises(MissingKeyError, match=r"beta-2 \(TRADEOPS_API_KEY_BETA_2 from Secret broker-keys, key beta\)"):
        pool_settings(broker(), {api_key_env("alpha"): "a-secret"})


def test_the_deployment_takes_each_key_from_its_secret_and_the_config_map_holds_none():
    with_broker = spec(config={"broker": BROKER})
    built = children(with_broker)
    container = built["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in
            e.get("valueFrom", {})}
    assert refs == {"TRADEOPS_API_KEY_ALPHA": {"name": "broker-keys", "key": "alpha"},
                    "TRADEOPS_API_KEY_BETA_2": {"name": "broker-keys", "key": "beta"}}
    assert container["envFrom"] == [{"secretRef": {"name": CREDENTIALS_SECRET, "optional": True}}]
    rendered = render_runtime_config(with_broker, revision_of(with_broker))
    assert "broker-keys" in rendered
    assert "ratePerSecond: 20" in rendered


def test_without_a_broker_the_deployment_carries_no_key():
    container = children()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in container["env"] if e["name"].startswith("TRADEOPS_API_KEY_")]


def test_the_network_policy_lets_the_runtime_reach_the_broker_ports():
    egress = children(spec(config={"broker": BROKER}))["NetworkPolicy"]["spec"]["egress"]
    assert {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 8080, "protocol": "TCP"}]} in egress
    plain = children()["NetworkPolicy"]["spec"]["egress"]
    assert not any(p["port"] == 8080 for rule in plain for p in rule["ports"])


@pytest.mark.parametrize(("overrides", "pre_trade", "expected"), [
    ({"endpoints": ["https://a.example"]}, 20, []),
    ({"endpoints": ["http://127.0.0.1:8080", "http://localhost"]}, 20, []),
    ({"endpoints": ["http://10.0.0.7:8080"]}, 20, ["plain HTTP"]),
    ({"endpoints": ["https://a.example"]}, 30, ["above the broker keys' combined rate (25/s)"]),
    ({"endpoints": ["https://a.example"], "orderExpiry": False}, 20, ["orders carry no expiry"]),
    ({"endpoints": ["https://a.example"], "orderExpiry": False, "orders": False}, 20, []),
], ids=["https", "loopback-http", "remote-http", "orders-above-keys", "no-expiry", "no-expiry-no-orders"])
def test_broker_warnings(overrides, pre_trade, expected):
    config = RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=RuntimeConfig(
        broker=broker(**overrides), pre_trade={"maxOrdersPerSecond": pre_trade}))
    warnings = broker_warnings(config)
    assert len(warnings) == len(expected)
    for warning, fragment in zip(warnings, expected, strict=True):
        assert fragment in warning


def runtime_for(tmp_path, runtime_config: RuntimeConfig) -> Runtime:
    """The runtime of SPY with `runtime_config`, its files in `tmp_path`, no database, no Redis, not started."""
    config = RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=runtime_config)
    paths = {"config": tmp_path / "runtime.yaml", "switches": tmp_path / "switches.yaml"}
    paths["config"].write_text(yaml.safe_dump(config.model_dump(by_alias=True, mode="json")))
    paths["switches"].write_text("tradingEnabled: true\n")
    args = argparse.Namespace(database_url=None, spill_path=str(tmp_path / "spill.jsonl"), redis_url=None,
                              feed_url="ws://127.0.0.1:9", config=str(paths["config"]),
                              switches=str(paths["switches"]), latency_log=None)
    return Runtime(args, config, Switches())


@pytest.mark.parametrize(("section", "http_orders", "api_snapshots"), [
    (None, False, False),
    ({}, True, True),
    ({"orders": False}, False, True),
    ({"snapshots": False}, True, False),
], ids=["no-broker-paper", "orders-and-snapshots", "snapshots-only", "orders-only"])
def test_the_runtime_wires_what_the_broker_section_asks_for(tmp_path, monkeypatch, section, http_orders,
                                                            api_snapshots):
    monkeypatch.setenv(api_key_env("alpha"), "a-secret")
    monkeypatch.setenv(api_key_env("beta-2"), "b-secret")
    runtime = runtime_for(tmp_path, RuntimeConfig(broker=broker(**section)) if section is not None else RuntimeConfig())
    assert isinstance(runtime.engine.broker, HttpBroker) is http_orders
    assert isinstance(runtime.engine.broker, PaperBroker)
    assert isinstance(runtime.feed, FeedClient)
    assert (runtime.feed.snapshots is not None) is api_snapshots
    assert (runtime.pool is not None) is (section is not None)
