"""The runtime's fault injection and start-up refusals, as functions (tests/integration/test_devstack.py
runs them as pods: the crash loop, never ready, the OOM kill, the refused config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trading_runtime.config import FaultInjection, RenderedConfig, RuntimeConfig
from trading_runtime.main import ballast, unworkable


def rendered(**runtime: object) -> RenderedConfig:
    return RenderedConfig(symbol="SPY", market="equity-options", revision=1,
                          runtime=RuntimeConfig.model_validate(runtime))


def test_every_fault_is_off_by_default_and_reads_zero():
    """Off means 0 (or false) for each, which is what the admission policy checks in git."""
    assert all(value == 0 for value in FaultInjection().model_dump().values())


@pytest.mark.parametrize(("parameters", "problems"), [
    ({}, []),
    ({"queueCapacity": 256, "batchSize": 256}, []),
    ({"queueCapacity": 200}, ["parameters.queueCapacity (200) is smaller than parameters.batchSize (256): no "
                              "batch could ever be queued whole"]),
], ids=["defaults", "equal", "queue-below-batch"])
def test_unworkable_configs(parameters, problems):
    assert unworkable(rendered(parameters=parameters)) == problems


def test_the_ballast_is_resident():
    block = ballast(4)
    assert len(block) == 4 * 1024 * 1024
    assert block[0] == block[4096] == block[-4096] == 1


def test_a_refused_config_exits_2_with_the_reason_on_stderr(tmp_path):
    config, switches = tmp_path / "runtime.yaml", tmp_path / "switches.yaml"
    config.write_text("symbol: SPY\nmarket: equity-options\nrevision: 1\nruntime: {parameters: {queueCapacity: 100}}\n")
    switches.write_text("tradingEnabled: true\n")
    done = subprocess.run([sys.executable, "-m", "trading_runtime", "--config", str(config), "--switches",
                           str(switches)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "cannot start:" in done.stderr
    assert "parameters.queueCapacity (100) is smaller than parameters.batchSize (256)" in done.stderr
