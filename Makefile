# tradeops — the targets the README names.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST_ARGS ?=
TEST_WORKERS ?= 4

.PHONY: install demo test lint typecheck contracts unit integration infra-test crd rules alertmanager bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python ## venv, the package and its dev tools, and the Debian tools the tests use
	$(BIN)/pip install -q -e ".[dev]"
	./scripts/install-system-deps.sh

demo: install ## the main job on the embedded default: emulated API + operator + kubectl apply examples/
	$(BIN)/python -m devstack.demo

test: install lint typecheck contracts ## everything CI runs (test files spread over $(TEST_WORKERS) workers)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy trading_operator trading_runtime policies drills opsctl infra devstack audit reports backtest modelops

contracts:
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

infra-test: install ## the Pulumi program under mocks, workflows, the TradingSymbols kept in git
	$(BIN)/pytest -q tests/unit/test_infra_*.py tests/unit/test_workflows.py tests/unit/test_symbol_manifests.py $(PYTEST_ARGS)

crd: ## regenerate the checked-in CRD from the pydantic models
	$(BIN)/python -m trading_operator.crd > deploy/crds/tradingsymbols.yaml
	$(BIN)/python -m trading_operator.crd --fleet > deploy/crds/fleetrollouts.yaml
	$(BIN)/python -m trading_operator.crd --docs > docs/tradingsymbol-fields.md

rules: ## regenerate the checked-in Prometheus rules from the default SLO and cost policies
	$(BIN)/python -m policies rules -o deploy/prometheus/rules.yml
	$(BIN)/python -m policies rules --prometheusrule --namespace tradeops-system -o deploy/prometheus/tradeops-rules.yaml
	$(BIN)/python -m policies cost-rules -o deploy/prometheus/cost-rules.yml
	$(BIN)/python -m policies cost-rules --prometheusrule --namespace tradeops-system -o deploy/prometheus/tradeops-cost-rules.yaml

alertmanager: ## regenerate the checked-in Alertmanager configuration from the default SLO policy
	$(BIN)/python -m policies.alertmanager -o deploy/alertmanager/alertmanager.yml

bench: install ## benchmarks print their figures
	$(BIN)/python benchmarks/operator_converge.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
