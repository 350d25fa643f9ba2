"""Building each report from its sources: the one entry point per report that `opsctl report`, the scheduled
job and the benchmark call."""

from __future__ import annotations

import pathlib

from audit.chain import Anchor
from audit.store import AuditStoreError
from drills.s3 import S3Settings, S3Store
from policies.loader import PolicyLoadError, PolicySet, default_policies, load_layered
from policies.models import CostPolicySpec, SLOPolicySpec
from reports import compliance, compliance_document, cost, cost_document, cost_fetch, performance, performance_document
from reports.document import Document
from reports.sources import Database, Prometheus, SourceError
from reports.window import Window


class ReportError(RuntimeError):
    """A report cannot be made: bad policies, or nothing to report on."""


def _policies(directory: pathlib.Path | None) -> PolicySet:
    try:
        return load_layered(directory) if directory else default_policies()
    except (PolicyLoadError, FileNotFoundError) as error:
        raise ReportError(f"policies do not load: {error}") from None


def cost_policy(directory: pathlib.Path | None, name: str) -> CostPolicySpec:
    policies = _policies(directory)
    if name not in policies.cost:
        raise ReportError(f"no CostPolicy named {name!r}")
    return policies.cost[name]


def slo_policy(directory: pathlib.Path | None, name: str) -> SLOPolicySpec:
    policies = _policies(directory)
    if name not in policies.slo:
        raise ReportError(f"no SLOPolicy named {name!r}")
    return policies.slo[name]


def performance_report(prometheus_url: str, database_url: str, policy: SLOPolicySpec, window: Window,
                       resolution: int = 300) -> Document:
    with Prometheus(prometheus_url) as prometheus:
        result = performance.fetch(prometheus, Database(database_url), policy, window, resolution)
    if not [s for s in result.symbols if s != performance.FLEET]:
        raise ReportError(f"no runtime series between {window.label()} in Prometheus at {prometheus_url}")
    return performance_document.document(result)


def cost_report(prometheus_url: str, policy: CostPolicySpec, window: Window,
                s3: S3Settings | None = None) -> Document:
    store = S3Store(s3) if s3 is not None else None
    try:
        with Prometheus(prometheus_url) as prometheus:
            inputs = cost_fetch.fetch(prometheus, policy, window, store)
    finally:
        if store is not None:
            store.close()
    result = cost.compute(inputs, policy, window)
    if not result.symbols:
        raise ReportError(f"no cost data for any symbol between {window.label()} in Prometheus at {prometheus_url}")
    return cost_document.document(result)


def compliance_report(prometheus_url: str, database_url: str, window: Window, anchors: list[Anchor],
                      resolution: int = 300) -> tuple[Document, bool]:
    """The document, and whether the audit chain verified."""
    try:
        with Prometheus(prometheus_url) as prometheus:
            result = compliance.fetch(Database(database_url), prometheus, window, anchors, resolution)
    except AuditStoreError as error:
        raise SourceError(str(error), True) from None
    if result.verification.entries == 0:
        raise ReportError("the audit log is empty: nothing was recorded yet")
    return compliance_document.document(result), result.verification.ok
