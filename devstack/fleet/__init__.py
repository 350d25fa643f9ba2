"""The devstack's fleet: the emulator's kubelet whose Pods are real trading-runtime processes
(`ProcessKubelet`, see `kubelet.py`)."""

from __future__ import annotations

from devstack.fleet.images import RUNTIME_IMAGES
from devstack.fleet.kubelet import History, ProcessKubelet, ScrapeTargets, default_scrape_labels

__all__ = ["RUNTIME_IMAGES", "History", "ProcessKubelet", "ScrapeTargets", "default_scrape_labels"]
