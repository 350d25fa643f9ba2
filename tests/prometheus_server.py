"""A throwaway Prometheus for integration tests: its own config, data directory and free port.

Targets come from static configs (`add_target`) or from file service discovery: JSON files
`[{"targets": ["127.0.0.1:PORT"], "labels": {...}}]` in a directory Prometheus re-reads every second
(`add_file_sd_dir`, `write_targets`), so a test can add and remove runtimes while Prometheus runs.
The scrape job honours the targets' own labels (`honor_labels: true`): a runtime's `symbol` label wins
over a target label of the same name."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml

from tests.servers import ThrowawayProcess

JOB = "tradeops"


class ThrowawayPrometheus(ThrowawayProcess):
    def __init__(self, scrape_interval: str = "1s") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not on PATH: install Debian's `prometheus` package "
                               "(scripts/install-system-deps.sh)")
        super().__init__("tradeops-prometheus-")
        self.binary = binary
        self.scrape_interval = scrape_interval
        self.static: list[dict[str, Any]] = []
        self.rule_files: list[pathlib.Path] = []
        self.file_sd_dir: pathlib.Path | None = None
        self.alertmanagers: list[str] = []
        """`host:port` of Alertmanagers the alerts are sent to (before start)."""
        self.args: list[str] = []
        """Extra command-line flags (e.g. a longer retention for backfilled history)."""

    def add_target(self, address: str, labels: dict[str, str] | None = None) -> ThrowawayPrometheus:
        """A static target (before start)."""
        self.static.append({"targets": [address], "labels": labels or {}})
        return self

    def add_rule_file(self, path: pathlib.Path) -> ThrowawayPrometheus:
        """A rules file to evaluate (before start). Groups with their own (coarser) interval, such as the 30-day
        ratios every 150 s, are evaluated at the server's interval here, so a test need not wait minutes for
        their first evaluation; the expressions are unchanged."""
        document = yaml.safe_load(path.read_text())
        for group in document.get("groups") or []:
            group.pop("interval", None)
        copy = self.dir / f"rules-{len(self.rule_files)}-{path.name}"
        copy.write_text(yaml.safe_dump(document, sort_keys=False))
        self.rule_files.append(copy)
        return self

    def add_file_sd_dir(self) -> pathlib.Path:
        """The directory of file-SD target files (created; before start)."""
        if self.file_sd_dir is None:
            self.file_sd_dir = self.dir / "targets"
            self.file_sd_dir.mkdir()
        return self.file_sd_dir

    def write_targets(self, name: str, groups: list[dict[str, Any]]) -> pathlib.Path:
        """Write (atomically) or replace `<name>.json` in the file-SD directory; `[]` removes its targets."""
        path = self.add_file_sd_dir() / f"{name}.json"
        partial = path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(groups))
        os.replace(partial, path)
        return path

    def config(self) -> dict[str, Any]:
        job: dict[str, Any] = {"job_name": JOB, "honor_labels": True, "static_configs": self.static}
        if self.file_sd_dir is not None:
            job["file_sd_configs"] = [{"files": [str(self.file_sd_dir / "*.json")], "refresh_interval": "1s"}]
        config = {"global": {"scrape_interval": self.scrape_interval, "scrape_timeout": self.scrape_interval,
                             "evaluation_interval": self.scrape_interval},
                  "rule_files": [str(p) for p in self.rule_files],
                  "scrape_configs": [job]}
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        return config

    def start(self, timeout: float = 60.0) -> ThrowawayPrometheus:
        """Start and wait until /-/ready answers (generous: the machines running the tests are shared)."""
        config = self.dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        self.launch([self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn", *self.args],
                    "/-/ready", timeout)
        return self

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant query."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as response:
            return list(json.load(response)["data"]["result"])

    def wait_for(self, promql: str, series: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least `series` series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if len(result) >= series:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} returned {len(result)} series after {timeout} s: {self.logs()}")
            time.sleep(0.25)
