"""opsctl stamps every change it makes with who made it (audit.identity): tests of the PATCH bodies it sends
check the stamp and compare the rest."""

from __future__ import annotations

import json
from typing import Any

from audit.identity import CHANGED_BY_ANNOTATION


def unstamped(body: Any) -> Any:
    """A PATCH body without opsctl's changed-by stamp, after checking it is there and names opsctl's user."""
    annotations = body["metadata"]["annotations"]
    assert "via opsctl" in json.loads(annotations.pop(CHANGED_BY_ANNOTATION))["actor"]
    if not annotations:
        del body["metadata"]["annotations"]
    if not body["metadata"]:
        del body["metadata"]
    return body
