"""The Python client against the real Maestro app on uvicorn (the shared ``server``)."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from client import AsyncMaestroClient, MaestroClient, NotFound, RequestRejected, Unauthorized
from tests.support.live_servers import KEYS

CART = "cart_abandoned"


def test_a_retried_request_id_returns_the_same_decision_logged_once(server) -> None:
    with MaestroClient(server.base_url, KEYS[0]) as maestro:
        first = maestro.decide("c-all", CART, request_id="client-retry-1")
        again = maestro.decide("c-all", CART, request_id="client-retry-1")
        other = maestro.decide("c-all", CART)
        assert first == again and other.event_id != first.event_id
        assert first.customer_known is True
        assert maestro.decide("c-al", CART).customer_known is False  # a typo: still decided
        assert first.ranking and abs(sum(r.probability for r in first.ranking) - 1) < 1e-9
        ack = maestro.reward(first.event_id, 1.0)
        assert ack.accepted and maestro.reward(first.event_id, 1.0).accepted is not None
        assert maestro.reward(first.event_id, 1.0).duplicate is True
        with pytest.raises(NotFound):
            maestro.reward("never-issued", 1.0)
    server.service.log.roll()
    frame = pd.read_parquet(server.home / "logs" / "decisions")
    assert (frame["event_id"] == first.event_id).sum() == 1


def test_real_422_and_401_are_typed(server) -> None:
    with MaestroClient(server.base_url, KEYS[1]) as maestro, \
            pytest.raises(RequestRejected) as err:
        maestro.decide("c-all", CART, context={"cart_value": [1, 2]})
    assert err.value.status == 422 and err.value.field.startswith("context")
    with MaestroClient(server.base_url) as anon, pytest.raises(Unauthorized):
        anon.decide("c-all", CART)


def test_async_client_event_and_decide(server) -> None:
    async def go() -> None:
        async with AsyncMaestroClient(server.base_url, KEYS[1]) as maestro:
            await maestro.event("c-events", "page_view", {"page": "checkout"})
            d = await maestro.decide("c-events", CART)
            assert d.event_id and 0 < d.probability <= 1

    asyncio.run(go())
