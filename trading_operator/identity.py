"""What names the TradingSymbol API on the server: group, version, kind, plural. Kept apart from the
models in `api.py` so that clients (opsctl) can address the API without building the pydantic models."""

from __future__ import annotations

GROUP = "trading.tradeops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TradingSymbol"
PLURAL = "tradingsymbols"
SINGULAR = "tradingsymbol"
SHORT_NAMES = ("ts",)
