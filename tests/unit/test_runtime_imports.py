"""What a runtime process loads at start: the clients of optional edges (a database, Redis, Parquet files) load
on first use, so a runtime without them does not carry them (resident memory is a cost per symbol)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_runtime_does_not_load_the_clients_of_edges_it_does_not_use():
    code = "import json, sys, trading_runtime.main; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    assert {"psycopg", "redis", "pyarrow"}.isdisjoint(loaded), {"psycopg", "redis", "pyarrow"} & loaded
