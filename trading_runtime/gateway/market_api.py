"""The market-data and order API as the runtime calls it, over the client pool.

`GET /v1/snapshots/{symbol}` answers a snapshot in the feed protocol's shape (feeds/protocol.py);
`POST /v1/orders` takes a market order with the client's order id, which the API treats as an idempotency
key (a retried order is the same order, never a second one); `GET /v1/positions` lists the account's open
positions (a real broker's positions API: instrument, signed quantity, average entry price) and
`GET /v1/fills?since=&symbol=` its executions (client order id, price, quantity, fee: Alpaca's account
activities, FIX execution reports), what a new leader reconciles its book against (execution/reconcile.py).
An order may carry `expireAt` (good-till-time): the broker refuses it when it arrives later, answering
`expired` (execution/fencing.py)."""

from __future__ import annotations

import datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from trading_runtime.execution.reconcile import BrokerFill, BrokerPosition
from trading_runtime.feeds.protocol import Snapshot
from trading_runtime.gateway.pool import ApiError, ClientPool

M = TypeVar("M", bound=BaseModel)


class OrderTicket(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    client_order_id: Annotated[str, Field(min_length=1, alias="clientOrderId")]
    instrument: str
    quantity: float
    """Signed: + buy, − sell."""
    type: Literal["market"] = "market"
    expire_at: datetime.datetime | None = Field(default=None, alias="expireAt")
    """Good-till-time (UTC): the broker refuses the order when it receives it later. None: no expiry."""


class OrderAck(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    client_order_id: str = Field(alias="clientOrderId")
    status: Literal["accepted", "filled", "rejected", "expired"]
    """`expired`: received after its `expireAt`, never filled."""
    price: float | None = None
    fee: float | None = None
    reason: str | None = None
    """Why the order was rejected or expired."""


class HeldPosition(BaseModel):
    """One open position as the broker lists it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    instrument: str
    quantity: float
    """Signed: + long, − short."""
    average_price: float = Field(alias="averagePrice")


class ExecutedFill(BaseModel):
    """One execution as the broker lists it (the paper broker fills an order once, whole)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    client_order_id: str = Field(alias="clientOrderId", min_length=1)
    instrument: str
    quantity: float
    """Signed: + bought, − sold."""
    price: float
    fee: float
    filled_at: datetime.datetime = Field(alias="filledAt")


class MarketApi:
    def __init__(self, pool: ClientPool) -> None:
        self.pool = pool

    async def snapshot(self, symbol: str) -> Snapshot:
        response = await self.pool.request("GET", f"/v1/snapshots/{symbol}", idempotent=True)
        if response.status != 200:
            raise ApiError(f"snapshot of {symbol}: HTTP {response.status} from {response.endpoint}")
        try:
            return Snapshot.model_validate(response.body)
        except ValidationError as exc:
            raise ApiError(f"snapshot of {symbol} from {response.endpoint} is malformed: {exc}") from exc

    async def submit_order(self, ticket: OrderTicket) -> OrderAck:
        response = await self.pool.request("POST", "/v1/orders", idempotent=True,
                                           json_body=ticket.model_dump(by_alias=True, mode="json",
                                                                       exclude_none=True),
                                           headers={"Idempotency-Key": ticket.client_order_id})
        if 400 <= response.status < 500:  # answered and refused (429s never get here: the pool retries them)
            return OrderAck(client_order_id=ticket.client_order_id, status="rejected",
                            reason=f"HTTP {response.status}: {str(response.body)[:200]}")
        if response.status not in (200, 201):
            raise ApiError(f"order {ticket.client_order_id}: HTTP {response.status} from {response.endpoint}")
        try:
            return OrderAck.model_validate(response.body)
        except ValidationError as exc:
            raise ApiError(f"order {ticket.client_order_id}: malformed acknowledgement: {exc}") from exc

    async def positions(self) -> dict[str, BrokerPosition]:
        """The account's open positions by instrument (an instrument not listed is flat at the broker)."""
        held = await self._listed("/v1/positions", HeldPosition, "positions")
        return {p.instrument: BrokerPosition(p.quantity, p.average_price) for p in held}

    async def fills(self, since: datetime.datetime, symbol: str) -> list[BrokerFill]:
        """The account's executions of `symbol` (the underlying and its options) since `since`, oldest first."""
        query = f"?since={since.astimezone(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}&symbol={symbol}"
        listed = await self._listed(f"/v1/fills{query}", ExecutedFill, "fills")
        return sorted((BrokerFill(f.client_order_id, f.instrument, f.quantity, f.price, f.fee, f.filled_at.timestamp())
                       for f in listed), key=lambda f: f.ts)

    async def _listed(self, path: str, model: type[M], what: str) -> list[M]:
        """A GET answering a JSON list of `model`; ApiError on any other status or a malformed body."""
        response = await self.pool.request("GET", path, idempotent=True)
        if response.status != 200:
            raise ApiError(f"{what}: HTTP {response.status} from {response.endpoint}")
        try:
            return TypeAdapter(list[model]).validate_python(response.body)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise ApiError(f"{what} from {response.endpoint} are malformed: {exc}") from exc
