"""The runtime's machine-learning parts: sizing can only shrink, thresholds stay in bounds and reset on drift,
the regime detector, and the model fallback that never crashes the engine."""

from __future__ import annotations

import asyncio
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading_runtime.config import MachineLearning, RenderedConfig, RuntimeConfig, StrategyThresholds
from trading_runtime.engine import SymbolEngine
from trading_runtime.feeds.client import settle
from trading_runtime.feeds.protocol import Quote
from trading_runtime.metrics import RuntimeMetrics
from trading_runtime.ml.bandit import ARMS, SizingBandit, capped_size
from trading_runtime.ml.features import FEATURE_NAMES, Decision, FeatureVector
from trading_runtime.ml.labels import Labelled
from trading_runtime.ml.loop import MlLoop
from trading_runtime.ml.regime import RegimeDetector
from trading_runtime.ml.serving import MetaGate
from trading_runtime.ml.thresholds import OnlineThresholds

finite = st.floats(-1e12, 1e12, allow_nan=False)


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(0.0, 1e12))
def test_the_size_multiplier_never_exceeds_the_risk_capped_size(multiplier, capped):
    size = capped_size(multiplier, capped)
    assert 0.0 <= size <= capped


@given(st.lists(st.tuples(st.floats(0.0, 1e9), finite, st.booleans(), st.floats(1e-6, 5.0)), min_size=1,
                max_size=60))
def test_the_loop_with_every_multiplier_on_only_ever_shrinks_the_risk_capped_size(steps):
    ml = MachineLearning(bandit_sizing=True, regime_detection=True)
    loop = MlLoop(_config(RuntimeConfig(ml=ml)), RuntimeMetrics("SPY"))
    for ts, (capped, equity, regime, vol) in enumerate(steps):
        if regime:
            loop.last_regime_change = ts
        size = loop.size(capped, float(ts), equity, 5e6, vol, 0.1)
        assert 0.0 <= size <= capped


def test_the_bandit_prefers_no_position_when_positions_lose_and_full_size_when_they_win():
    for outcome, best in ((-0.002, 0.0), (0.002, 1.0)):
        bandit, equity = SizingBandit(), 5e6
        for _ in range(300):
            m = bandit.choose(False, False, equity, 5e6)
            equity += m * outcome * 5e6
        arms = bandit.contexts[(False, False)]
        assert ARMS[int(np.argmax(arms.counts))] == best


def _labelled(hit: bool, ts: float) -> Labelled:
    features = FeatureVector(**{**dict.fromkeys(FEATURE_NAMES, 0.0), "direction": 1.0})
    return Labelled(Decision(ts, 100.0, 0.01, features), ts + 60, 1.0 if hit else -1.0, 1 if hit else -1)


def test_online_thresholds_rise_on_poor_calls_stay_in_bounds_and_every_change_is_a_metric():
    metrics = RuntimeMetrics("SPY")
    settings = MachineLearning(adaptive_thresholds=True, entry_score_min=0.5, entry_score_max=0.7)
    adaptive = OnlineThresholds(StrategyThresholds(), settings, metrics)
    rng = np.random.default_rng(1)
    for i in range(400):
        adaptive.learn(_labelled(bool(rng.random() < 0.3), float(i)))
        assert 0.5 <= adaptive.entry <= 0.7
        assert adaptive.current.exit_score < adaptive.current.entry_score
    assert adaptive.entry == pytest.approx(0.7)
    value = metrics.registry.get_sample_value("tradeops_strategy_threshold", {"symbol": "SPY", "name": "entry_score"})
    assert value == pytest.approx(adaptive.entry)
    assert metrics.registry.get_sample_value("tradeops_threshold_changes_total",
                                             {"symbol": "SPY", "cause": "learn"}) > 0


def test_a_drift_in_the_hit_rate_resets_the_adaptation_and_slows_it():
    metrics = RuntimeMetrics("SPY")
    adaptive = OnlineThresholds(StrategyThresholds(), MachineLearning(adaptive_thresholds=True), metrics)
    for i in range(300):
        adaptive.learn(_labelled(True, float(i)))
    for i in range(300, 600):
        adaptive.learn(_labelled(False, float(i)))
    assert adaptive.drifts >= 1
    assert adaptive.step < 0.05
    assert metrics.registry.get_sample_value("tradeops_threshold_changes_total",
                                             {"symbol": "SPY", "cause": "drift"}) >= 1


def _seconds(detector: RegimeDetector, rng: np.random.Generator, start: float, seconds: int, vol: float,
             spread: float) -> list[float]:
    mid, alarms = 100.0, []
    for i in range(seconds):
        mid *= math.exp(vol * rng.standard_normal())
        if detector.update(start + i, mid, spread * mid, 10.0):
            alarms.append(start + i)
    return alarms


SESSION = 390 * 60


@pytest.mark.parametrize(("vol", "spread", "within"), [(3e-4, 1e-4, 60), (1e-4, 3e-4, 30), (2e-4, 1e-4, 300)],
                         ids=["volatility-x3", "spread-x3", "volatility-x2"])
def test_the_regime_detector_is_quiet_on_calm_data_and_catches_a_shift_within_a_minute_or_so(vol, spread, within):
    rng = np.random.default_rng(3)
    detector = RegimeDetector()
    assert _seconds(detector, rng, 0.0, SESSION, 1e-4, 1e-4) == []
    shifted = _seconds(detector, rng, SESSION, 1800, vol, spread)
    assert shifted
    assert shifted[0] - SESSION <= within


def test_a_regime_change_is_declared_once_then_the_new_regime_is_learnt():
    rng = np.random.default_rng(5)
    detector = RegimeDetector(warmup_seconds=600.0, relearn_seconds=600.0)
    assert not detector.watching
    _seconds(detector, rng, 0.0, 900, 1e-4, 1e-4)
    assert detector.watching
    alarms = _seconds(detector, rng, 900.0, 3 * 3600, 3e-4, 1e-4)
    assert len(alarms) == 1
    assert detector.watching


def test_the_loop_exports_whether_the_detector_watches_and_when_the_regime_last_changed():
    rng = np.random.default_rng(7)
    metrics = RuntimeMetrics("SPY")
    loop = MlLoop(_config(RuntimeConfig(ml=MachineLearning(regime_detection=True, regime_warmup_seconds=60))), metrics)
    mid = 100.0

    def sample(name):
        return metrics.registry.get_sample_value(name, {"symbol": "SPY"})

    changes = []
    for i in range(600):
        mid *= math.exp((1e-4 if i < 300 else 5e-4) * rng.standard_normal())
        if i == 1:
            assert sample("tradeops_regime_watching") == 0
            assert sample("tradeops_regime_last_change_timestamp_seconds") is None
        if i == 200:
            assert sample("tradeops_regime_watching") == 1
        if (change := loop.on_quote(1000.0 + i, mid, 0.01, 10.0)) is not None:
            changes.append(change)
    assert len(changes) == 1
    assert "volatility" in changes[0].features
    assert sample("tradeops_regime_last_change_timestamp_seconds") == changes[0].ts
    assert sample("tradeops_regime_changes_total") == 1
    assert sample("tradeops_regime_watching") == 0  # relearning the new regime


def _config(runtime: RuntimeConfig) -> RenderedConfig:
    return RenderedConfig(symbol="SPY", market="equity-options", revision=1, runtime=runtime)


@pytest.mark.parametrize(("content", "reason"), [(None, "LoadFailed"), (b"not an onnx model", "LoadFailed")],
                         ids=["missing-file", "corrupt-file"])
def test_a_model_that_cannot_load_falls_back_to_the_combiner_with_a_metric(tmp_path, content, reason):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    metrics = RuntimeMetrics("SPY")
    gate = MetaGate(str(path), 0.5, metrics)
    assert (gate.status.serving, gate.status.reason) == (False, reason)
    assert metrics.registry.get_sample_value("tradeops_model_fallback_total", {"symbol": "SPY", "reason": reason}) == 1
    assert metrics.registry.get_sample_value("tradeops_model_serving", {"symbol": "SPY"}) == 0
    features = FeatureVector(**{**dict.fromkeys(FEATURE_NAMES, 0.0), "direction": -1.0})
    assert gate.decide(features) == -1  # the combiner's call stands


def _onnx(path: pathlib.Path, names: tuple[str, ...]) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelops.export import to_onnx

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, len(FEATURE_NAMES))).astype(np.float32)
    proto = to_onnx(LogisticRegression().fit(x, x[:, 0] > 0), "test")
    for prop in proto.metadata_props:
        if prop.key == "feature_names":
            prop.value = ",".join(names)
    path.write_bytes(proto.SerializeToString())


def test_a_model_trained_on_other_features_is_refused_at_load(tmp_path):
    path = tmp_path / "model.onnx"
    _onnx(path, (*FEATURE_NAMES[:-1], "something_else"))
    gate = MetaGate(str(path), 0.5, RuntimeMetrics("SPY"))
    assert gate.status.reason == "SchemaMismatch"
    assert gate.model is None


def test_a_served_model_accepts_or_rejects_and_a_scoring_failure_falls_back(tmp_path):
    path = tmp_path / "model.onnx"
    _onnx(path, FEATURE_NAMES)
    metrics = RuntimeMetrics("SPY")
    gate = MetaGate(str(path), 0.5, metrics)
    assert gate.status.serving
    base = dict.fromkeys(FEATURE_NAMES, 0.0)
    assert gate.decide(FeatureVector(**{**base, "ofi": 3.0, "direction": 1.0})) == 1
    assert gate.decide(FeatureVector(**{**base, "ofi": -3.0, "direction": 1.0})) == 0
    assert metrics.registry.get_sample_value("tradeops_meta_decisions_total",
                                             {"symbol": "SPY", "outcome": "rejected"}) == 1

    class Broken:
        def probability(self, features: FeatureVector) -> float:
            raise RuntimeError("session lost")

    gate.model = Broken()  # type: ignore[assignment]
    assert gate.decide(FeatureVector(**{**base, "direction": 1.0})) == 1
    assert (gate.status.reason, gate.model) == ("ScoreFailed", None)
    assert metrics.registry.get_sample_value("tradeops_model_fallback_total",
                                             {"symbol": "SPY", "reason": "ScoreFailed"}) == 1


def test_an_engine_with_an_unloadable_model_keeps_trading_on_the_combiner(tmp_path):
    runtime = RuntimeConfig(ml=MachineLearning(model_path=str(tmp_path / "absent.onnx")))
    rows: list[str] = []
    engine = SymbolEngine(_config(runtime), True, RuntimeMetrics("SPY"), lambda t, r: rows.append(t), seed=0)

    async def feed() -> None:
        for i in range(50):
            await settle(engine.on_message(Quote.model_validate({
                "type": "quote", "symbol": "SPY", "instrument": "SPY", "ts": 1_767_279_000.0 + i, "seq": i,
                "bid": 100.0 + i * 0.01, "ask": 100.02 + i * 0.01, "bidSize": 10 + i, "askSize": 5})))

    asyncio.run(feed())
    assert engine.ml.gate.status.reason == "LoadFailed"
    assert engine.metrics.registry.get_sample_value("tradeops_errors_total", {"symbol": "SPY", "stage": "process"}) \
        is None
    assert "ticks" in rows


def test_without_river_the_online_thresholds_stay_off_with_a_counted_error(monkeypatch):
    """The regime detector needs no river: it stays on."""
    import sys

    monkeypatch.setitem(sys.modules, "river", None)  # `import river` now raises ImportError
    metrics = RuntimeMetrics("SPY")
    loop = MlLoop(_config(RuntimeConfig(ml=MachineLearning(adaptive_thresholds=True, regime_detection=True))), metrics)
    assert loop.thresholds is None
    assert loop.regime is not None
    assert metrics.registry.get_sample_value("tradeops_errors_total", {"symbol": "SPY", "stage": "ml"}) == 1
    assert loop.strategy(StrategyThresholds()) == StrategyThresholds()


def test_the_bound_buffers_score_each_row_as_a_plain_session_run_does(tmp_path):
    """The serving path overwrites one bound input row per decision: every row must still get its own answer."""
    import onnxruntime as ort

    from trading_runtime.ml.serving import OnnxMetaModel

    path = tmp_path / "model.onnx"
    _onnx(path, FEATURE_NAMES)
    served = OnnxMetaModel(str(path))
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((50, len(FEATURE_NAMES)))
    rows[::7, 2] = np.nan  # no reading yet: scored as 0, as in training
    for row in rows:
        expected = plain.run([served.output], {served.input: np.nan_to_num(row, nan=0.0).astype(np.float32)[None]})
        assert served.probability(FeatureVector(*map(float, row))) == pytest.approx(float(expected[0][0, 1]), abs=1e-6)
