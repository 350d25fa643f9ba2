"""What the cost report reads: hourly allocations from Prometheus (policies.cost_queries) and, when a bucket
is given, the backups' size and write requests from S3."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from drills.s3 import PART_SIZE, S3Store
from policies import cost_queries as q
from policies.models import CostPolicySpec
from reports.cost import CostInputs, Hourly, S3Use, ServiceUse
from reports.sources import Prometheus, Series, SourceError
from reports.window import HOUR, Window

STEP = "1h"


def _by_label(series: list[Series], label: str = q.SYMBOL) -> dict[str, Hourly]:
    return {s.labels.get(label, ""): dict(s.points) for s in series if s.labels.get(label)}


def _single(series: list[Series]) -> Hourly:
    return dict(series[0].points) if series else {}


def fetch(prometheus: Prometheus, policy: CostPolicySpec, window: Window, s3: S3Store | None) -> CostInputs:
    first = window.start + datetime.timedelta(hours=1)

    def hourly(query: str) -> list[Series]:
        return prometheus.range(query, first, window.end, HOUR)

    def per_symbol(query: str) -> Mapping[str, float]:
        return {labels.get(q.SYMBOL, ""): value for labels, value in prometheus.instant(query, window.end)
                if labels.get(q.SYMBOL)}

    services = {}
    usage: dict[str, Mapping[str, float]] = {}
    for service in policy.shared_services:
        scope = q.service_scope(service)
        volume = q.service_volume_bytes(service, STEP)
        services[service.name] = ServiceUse(_single(hourly(f"sum({q.cpu_cores(STEP, scope)})")),
                                            _single(hourly(f"sum({q.memory_bytes(STEP, scope)})")),
                                            _single(hourly(volume)) if volume else {})
        measure = q.usage(service.split_by, policy, window.range)
        usage[service.name] = per_symbol(measure) if measure else {}
    return CostInputs(
        symbol_cpu=_by_label(hourly(q.by_symbol(q.cpu_cores(STEP), policy, STEP))),
        symbol_memory=_by_label(hourly(q.by_symbol(q.memory_bytes(STEP), policy, STEP))),
        services=services,
        all_cpu=_single(hourly(f"sum({q.cpu_cores(STEP)})")),
        all_memory=_single(hourly(f"sum({q.memory_bytes(STEP)})")),
        node_cpu=_single(hourly(q.node_capacity("cpu", STEP))),
        node_memory=_single(hourly(q.node_capacity("memory", STEP))),
        usage=usage,
        s3=s3_use(s3, window) if s3 is not None else None,
        s3_usage=per_symbol(f"sum by ({q.SYMBOL}) (increase(tradeops_db_rows_written_total[{window.range}]))"),
    )


def s3_use(store: S3Store, window: Window) -> S3Use:
    """Bytes stored under the backups' prefix now, and the write requests of the objects written in the
    window (a multipart upload is its parts plus its create and complete requests). Reads (verify, restore)
    are not counted: S3 does not report them without request metrics."""
    stored = puts = 0
    prefix = store.settings.prefix.strip("/") + "/"
    try:
        for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                size = int(obj.get("Size", 0))
                stored += size
                if window.start <= obj["LastModified"] <= window.end:
                    puts += 1 if size <= PART_SIZE else math.ceil(size / PART_SIZE) + 2
    except (BotoCoreError, ClientError) as error:
        raise SourceError(f"S3 bucket {store.bucket}: {error}", isinstance(error, BotoCoreError)) from None
    return S3Use(stored, puts)
