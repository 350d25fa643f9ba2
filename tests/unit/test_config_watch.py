"""Runtime config loading and hot reload: valid changes apply, invalid ones are rejected and counted."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from trading_runtime.config import RenderedConfig, RuntimeParameters, Switches
from trading_runtime.config_watch import ConfigError, WatchedFile, load_runtime_config, watch

VALID = {"symbol": "SPY", "market": "equity-options", "revision": 3,
         "runtime": {"strategy": {"entryScore": 0.7, "exitScore": 0.2}, "parameters": {"batchSize": 64}}}


def write(path, data) -> None:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)


def test_loads_the_rendered_config(tmp_path):
    path = tmp_path / "runtime.yaml"
    write(path, VALID)
    config = load_runtime_config(path)
    assert config.revision == 3
    assert config.runtime.parameters.batch_size == 64
    assert config.runtime.fault_injection.extra_latency_ms == 0.0


@pytest.mark.parametrize(
    ("content", "reason"),
    [({**VALID, "runtime": {"strategy": {"entryScore": 0.2, "exitScore": 0.5}}}, "exitScore"),
     ({**VALID, "runtime": {"parameters": {"batchSize": 0}}}, "runtime.parameters.batchSize"),
     ({**VALID, "unknownKey": 1}, "unknownKey"),
     ("symbol: [unclosed", "runtime.yaml")],
    ids=["cross-field", "out-of-range", "unknown-field", "not-yaml"],
)
def test_invalid_files_say_why(tmp_path, content, reason):
    path = tmp_path / "runtime.yaml"
    write(path, content)
    with pytest.raises(ConfigError, match=reason):
        load_runtime_config(path)


def test_hot_reload_applies_valid_and_keeps_running_on_invalid(tmp_path):
    path = tmp_path / "runtime.yaml"
    write(path, VALID)
    applied: list[RenderedConfig] = []
    watched = WatchedFile(path, RenderedConfig, applied.append)
    assert watched.check() is True
    assert watched.check() is False  # unchanged
    write(path, {**VALID, "revision": 4})
    assert watched.check() is True
    assert [c.revision for c in applied] == [3, 4]
    write(path, {**VALID, "revision": "four"})
    assert watched.check() is False
    assert watched.check() is False  # the same bad file is counted once
    assert watched.rejected == 1
    assert "revision" in watched.last_error
    assert watched.value is not None
    assert watched.value.revision == 4
    write(path, {**VALID, "revision": 5})
    assert watched.check() is True
    assert watched.last_error == ""
    assert watched.reloads == 3


def test_a_symlink_swap_like_kubernetes_does_is_seen(tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    write(tmp_path / "v1" / "switches.yaml", {"tradingEnabled": True})
    write(tmp_path / "v2" / "switches.yaml", {"tradingEnabled": False})
    link = tmp_path / "data"
    link.symlink_to(tmp_path / "v1")
    seen: list[bool] = []
    watched = WatchedFile(link / "switches.yaml", Switches, lambda s: seen.append(s.trading_enabled))
    watched.check()
    link.unlink()
    link.symlink_to(tmp_path / "v2")
    watched.check()
    assert seen == [True, False]


async def test_watch_polls_until_stopped(tmp_path):
    path = tmp_path / "switches.yaml"
    write(path, {"tradingEnabled": True})
    seen: list[bool] = []
    watched = WatchedFile(path, Switches, lambda s: seen.append(s.trading_enabled))
    stop = asyncio.Event()
    task = asyncio.create_task(watch([watched], stop, interval=0.01))
    await asyncio.sleep(0.05)
    write(path, {"tradingEnabled": False})
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert seen == [True, False]


def test_removed_parameters_of_a_stored_revision_still_load():
    """workers and cacheTtlSeconds were removed; a revision stored before carries them and must load."""
    parameters = RuntimeParameters.model_validate({"batchSize": 64, "workers": 4, "cacheTtlSeconds": 15})
    assert parameters.batch_size == 64
    assert "workers" not in parameters.model_dump(by_alias=True)
