"""The market-data protocol: JSON messages over a WebSocket, one object per text frame.

Server → client (every message carries `type`, and all but heartbeats a `symbol`, `seq` and `ts`):

- `snapshot`: the full state of a symbol — `underlying` quote and every `options` quote of its chain.
  Sent after `subscribe` and on a resync request; sequence numbers continue from its `seq`.
- `quote`: a new best bid/ask (`bid`, `ask`, `bidSize`, `askSize`) of one `instrument` (the underlying's
  symbol, or an option id `SYMBOL-YYYYMMDD-C|P-STRIKE`).
- `trade`: a print of one `instrument` at `price` for `size`; `aggressor` is `buy`, `sell` or absent.
- `heartbeat`: sent when nothing else was for a second; carries `ts` only.

`seq` increases by exactly one per message of a symbol; `ts` is the exchange time in epoch seconds. Quotes
and trades may carry `sent`, the epoch second the feed was due to send them (its schedule, not when it got
round to it): the runtime measures tick-to-signal latency from there.

Client → server: `{"op": "subscribe", "symbols": ["SPY", ...]}` and `{"op": "snapshot", "symbol": "SPY"}`
(resync after a sequence gap).

Anything that does not parse into one of these models is malformed: counted and dropped by the client.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

Price = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Size = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Symbol = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}$")]
Instrument = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9.]{0,9}(-\d{8}-[CP]-\d+(\.\d+)?)?$", max_length=40)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class QuoteFields(_Message):
    instrument: Instrument
    bid: Price
    ask: Price
    bid_size: Size = Field(alias="bidSize")
    ask_size: Size = Field(alias="askSize")

    @model_validator(mode="after")
    def _not_crossed(self) -> QuoteFields:
        if self.ask < self.bid:
            raise ValueError(f"crossed quote: bid {self.bid} > ask {self.ask}")
        return self

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


class OptionQuote(QuoteFields):
    expiry: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    strike: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    right: Literal["C", "P"]


class Snapshot(_Message):
    type: Literal["snapshot"]
    symbol: Symbol
    seq: Annotated[int, Field(ge=0)]
    ts: Annotated[float, Field(allow_inf_nan=False)]
    underlying: QuoteFields
    options: list[OptionQuote]


class Quote(QuoteFields):
    type: Literal["quote"]
    symbol: Symbol
    seq: Annotated[int, Field(ge=0)]
    ts: Annotated[float, Field(allow_inf_nan=False)]
    sent: Annotated[float, Field(allow_inf_nan=False)] | None = None


class Trade(_Message):
    type: Literal["trade"]
    symbol: Symbol
    seq: Annotated[int, Field(ge=0)]
    ts: Annotated[float, Field(allow_inf_nan=False)]
    instrument: Instrument
    price: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    size: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    aggressor: Literal["buy", "sell"] | None = None
    sent: Annotated[float, Field(allow_inf_nan=False)] | None = None


class Heartbeat(_Message):
    type: Literal["heartbeat"]
    ts: Annotated[float, Field(allow_inf_nan=False)]


MarketMessage = Annotated[Snapshot | Quote | Trade | Heartbeat, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Snapshot | Quote | Trade | Heartbeat] = TypeAdapter(MarketMessage)


def parse_message(raw: str | bytes) -> Snapshot | Quote | Trade | Heartbeat:
    """Parse one frame; raises `ValueError` (pydantic's ValidationError is one) when malformed."""
    return _ADAPTER.validate_json(raw)


def option_id(symbol: str, expiry: str, right: str, strike: float) -> str:
    """`SPY-20261218-C-500`."""
    strike_text = f"{strike:g}"
    return f"{symbol}-{expiry.replace('-', '')}-{right}-{strike_text}"
