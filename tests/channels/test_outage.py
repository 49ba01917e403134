"""The broker connection drops and comes back: resubscribed, replayed or signalled.

A relay (tests/channels/relay.py) stands between the subscribing ``Channels``
and the real server; the publisher talks to the server directly, so messages
are published while the subscriber is cut off, exactly as when the broker
restarts under a worker. Nothing is restarted but the relay.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from covet.channels import Channels, Message
from tests.channels.conftest import (
    REDIS_URL,
    backend_url,
    drop_prefix,
    require_postgres,
    require_redis,
    unique_prefix,
)
from tests.channels.relay import Relay

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from covet.channels import Subscription

pytestmark = pytest.mark.slow


class Outage:
    """A subscriber behind a relay and a direct publisher, on one backend."""

    def __init__(self, backend: str, relay: Relay, prefix: str) -> None:
        self.backend = backend
        self.relay = relay
        self.prefix = prefix
        self.made: list[Channels] = []

    def make(self, *, relayed: bool, history: int) -> Channels:
        url = backend_url(self.backend)
        if relayed:
            parts = urllib.parse.urlsplit(url)
            netloc = parts.netloc.rpartition("@")[0]
            netloc = f"{netloc}@" if netloc else ""
            url = urllib.parse.urlunsplit(
                (parts.scheme, f"{netloc}127.0.0.1:{self.relay.port}", parts.path, "", "")
            )
        channels = Channels(url, prefix=self.prefix, history=history)
        self.made.append(channels)
        return channels


@pytest.fixture(params=["redis", "postgres"])
async def outage(request: pytest.FixtureRequest) -> AsyncIterator[Outage]:
    backend: str = request.param
    if backend == "redis":
        await require_redis()
        target = urllib.parse.urlsplit(REDIS_URL)
    else:
        target = urllib.parse.urlsplit(require_postgres())
    default_port = 6379 if backend == "redis" else 5432
    relay = Relay(target.hostname or "127.0.0.1", target.port or default_port)
    await relay.start()
    state = Outage(backend, relay, unique_prefix(backend))
    try:
        yield state
    finally:
        await relay.stop()
        for channels in state.made:
            await channels.close()
        await drop_prefix(backend, state.prefix)


async def take(subscription: Subscription, count: int) -> list[object]:
    items = [await asyncio.wait_for(subscription.get(), 20) for _ in range(count)]
    return [
        (item.id, item.data)
        if isinstance(item, Message)
        else ("gap", item.after, item.missed, item.reason)
        for item in items
    ]


async def test_missed_messages_are_replayed_after_the_connection_returns(outage) -> None:
    subscriber = outage.make(relayed=True, history=50)
    publisher = outage.make(relayed=False, history=50)
    async with subscriber.subscribe("feed") as subscription:
        await publisher.publish("feed", "one")
        assert await take(subscription, 1) == [(1, "one")]
        outage.relay.down()
        await asyncio.sleep(0.3)
        await publisher.publish("feed", "two")
        await publisher.publish("feed", "three")
        await asyncio.sleep(0.5)  # the subscriber retries against a refusing relay
        outage.relay.up()
        assert await take(subscription, 2) == [(2, "two"), (3, "three")]
        await publisher.publish("feed", "four")
        assert await take(subscription, 1) == [(4, "four")]
    assert outage.relay.connections >= 2  # it really reconnected


async def test_without_history_the_loss_is_signalled(outage) -> None:
    subscriber = outage.make(relayed=True, history=0)
    publisher = outage.make(relayed=False, history=0)
    async with subscriber.subscribe("feed") as subscription:
        await publisher.publish("feed", "one")
        assert await take(subscription, 1) == [(1, "one")]
        outage.relay.down()
        await asyncio.sleep(0.3)
        await publisher.publish("feed", "two")
        await publisher.publish("feed", "three")
        outage.relay.up()
        # Signalled as soon as the connection is back, before any new message.
        assert await take(subscription, 1) == [("gap", 1, 2, "unavailable")]
        await publisher.publish("feed", "four")
        assert await take(subscription, 1) == [(4, "four")]


async def test_a_broker_that_lost_its_data_is_signalled_as_a_reset(outage) -> None:
    subscriber = outage.make(relayed=True, history=10)
    publisher = outage.make(relayed=False, history=10)
    async with subscriber.subscribe("feed") as subscription:
        for word in ("one", "two", "three"):
            await publisher.publish("feed", word)
        assert await take(subscription, 3) == [(1, "one"), (2, "two"), (3, "three")]
        outage.relay.down()
        # The broker restarts empty (no persistence): ids begin again at 1.
        await drop_prefix(outage.backend, outage.prefix)
        if outage.backend == "postgres":
            await publisher.close()  # its pool held the dropped tables' plans
        await publisher.publish("feed", "fresh")
        outage.relay.up()
        assert await take(subscription, 2) == [("gap", 3, None, "reset"), (1, "fresh")]


async def test_publishing_while_the_broker_is_unreachable_raises(outage) -> None:
    from covet.channels import BrokerUnavailableError

    publisher = outage.make(relayed=True, history=1)
    await publisher.publish("feed", 1)
    outage.relay.down()
    with pytest.raises(BrokerUnavailableError, match="unreachable while publishing on 'feed'"):
        await publisher.publish("feed", 2)
    outage.relay.up()
    assert await publisher.publish("feed", 3) >= 2
