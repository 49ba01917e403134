"""Publish, subscribe, history, resume and the slow-consumer policy, on every backend."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc

import pytest

from covet.channels import (
    Channels,
    ChannelsError,
    Gap,
    Message,
    SlowConsumerError,
    Subscription,
)
from covet.exceptions import ImproperlyConfigured


async def take(subscription: Subscription, count: int, timeout: float = 5) -> list[Message | Gap]:
    return [await asyncio.wait_for(subscription.get(), timeout) for _ in range(count)]


def summary(items: list[Message | Gap]) -> list[object]:
    return [
        (item.channel, item.id, item.data)
        if isinstance(item, Message)
        else ("gap", item.channel, item.after, item.missed, item.reason)
        for item in items
    ]


async def test_messages_arrive_in_order_with_contiguous_ids(make_channels) -> None:
    channels = make_channels()
    async with channels.subscribe(["chat", "news"]) as subscription:
        assert await channels.publish("chat", {"text": "hi"}) == 1
        assert await channels.publish("news", [1, 2]) == 1
        assert await channels.publish("chat", "again") == 2
        items = await take(subscription, 3)
    assert summary(items) == [
        ("chat", 1, {"text": "hi"}),
        ("news", 1, [1, 2]),
        ("chat", 2, "again"),
    ]
    assert subscription.closed
    assert await channels.last_id("chat") == 2
    assert await channels.last_id("never-used") == 0


async def test_two_subscribers_share_one_message_object(make_channels) -> None:
    channels = make_channels()
    async with channels.subscribe("c") as first, channels.subscribe("c") as second:
        await channels.publish("c", {"n": 1})
        (a,) = await take(first, 1)
        (b,) = await take(second, 1)
    assert a is b
    assert isinstance(a, Message)
    assert a.text == '{"type":"message","channel":"c","id":1,"data":{"n":1}}'


async def test_a_subscriber_only_sees_what_was_published_after_it_subscribed(make_channels) -> None:
    channels = make_channels()
    await channels.publish("c", "before")
    async with channels.subscribe("c") as subscription:
        await channels.publish("c", "after")
        assert summary(await take(subscription, 1)) == [("c", 2, "after")]


async def test_unsubscribe_and_subscribe_later(make_channels) -> None:
    channels = make_channels()
    async with channels.subscribe(["a", "b"]) as subscription:
        await subscription.unsubscribe("a")
        assert subscription.channels == {"b"}
        await channels.publish("a", 1)
        await channels.publish("b", 2)
        await subscription.subscribe("a")
        await channels.publish("a", 3)
        assert summary(await take(subscription, 2)) == [("b", 1, 2), ("a", 2, 3)]
    with pytest.raises(ChannelsError, match="closed"):
        await subscription.subscribe("c")


async def test_iteration_ends_when_the_subscription_closes(make_channels) -> None:
    channels = make_channels()
    received: list[object] = []
    subscription = channels.subscribe("c")
    await subscription.start()

    async def consume() -> None:
        async for item in subscription:
            assert isinstance(item, Message)
            received.append(item.data)
            if item.data == 2:
                await subscription.close()

    consumer = asyncio.ensure_future(consume())
    await channels.publish("c", 1)
    await channels.publish("c", 2)
    await asyncio.wait_for(consumer, 5)
    assert received == [1, 2]


async def test_history_is_bounded_and_read_after_an_id(make_channels) -> None:
    channels = make_channels(history=3)
    for n in range(1, 6):
        await channels.publish("h", n)
    assert [(m.id, m.data) for m in await channels.history("h")] == [(3, 3), (4, 4), (5, 5)]
    assert [m.id for m in await channels.history("h", after=4)] == [5]


async def test_history_sizes_per_channel_pattern(make_channels) -> None:
    channels = make_channels(history={"room:*": 2})
    for n in range(3):
        await channels.publish("room:a", n)
        await channels.publish("other", n)
    assert [m.data for m in await channels.history("room:a")] == [1, 2]
    assert await channels.history("other") == []
    assert channels.history_size("room:b") == 2
    assert channels.history_size("other") == 0


async def test_resume_replays_from_history_then_goes_live(make_channels) -> None:
    channels = make_channels(history=10)
    for n in range(1, 5):
        await channels.publish("r", n)
    async with channels.subscribe("r", last_ids={"r": 2}) as subscription:
        await channels.publish("r", 5)
        items = await take(subscription, 3)
        assert summary(items) == [("r", 3, 3), ("r", 4, 4), ("r", 5, 5)]
        assert len(subscription) == 0


async def test_resume_past_the_history_signals_a_gap(make_channels) -> None:
    channels = make_channels(history=2)
    for n in range(1, 7):
        await channels.publish("r", n)
    async with channels.subscribe("r", last_ids={"r": 1}) as subscription:
        items = await take(subscription, 3)
    assert summary(items) == [("gap", "r", 1, 3, "unavailable"), ("r", 5, 5), ("r", 6, 6)]


async def test_resume_without_history_signals_what_was_missed(make_channels) -> None:
    channels = make_channels(history=0)
    for n in range(1, 4):
        await channels.publish("r", n)
    async with channels.subscribe("r", last_ids={"r": 1}) as subscription:
        await channels.publish("r", 4)
        items = await take(subscription, 2)
    assert summary(items) == [("gap", "r", 1, 2, "unavailable"), ("r", 4, 4)]


async def test_resume_from_an_id_the_broker_never_issued_signals_a_reset(make_channels) -> None:
    channels = make_channels()
    await channels.publish("r", 1)
    async with channels.subscribe("r", last_ids={"r": 50}) as subscription:
        items = await take(subscription, 1)
    assert summary(items) == [("gap", "r", 50, None, "reset")]


async def test_drop_oldest_keeps_the_newest_and_signals_the_drop(make_channels) -> None:
    channels = make_channels()
    async with channels.subscribe("slow", max_queue=3) as slow, channels.subscribe("slow") as fast:
        for n in range(1, 11):
            await channels.publish("slow", n)  # never waits for the slow reader
        # The fast reader is unaffected by the slow one.
        assert [item.data for item in await take(fast, 10)] == list(range(1, 11))  # type: ignore[union-attr]
        items = await take(slow, 4)
        assert len(slow) == 0
    assert summary(items) == [
        ("gap", "slow", 0, 7, "overflow"),
        ("slow", 8, 8),
        ("slow", 9, 9),
        ("slow", 10, 10),
    ]


async def test_disconnect_policy_ends_the_subscription_with_1013(make_channels) -> None:
    channels = make_channels()
    async with channels.subscribe("slow", max_queue=2, on_overflow="disconnect") as slow:
        for n in range(1, 4):
            await channels.publish("slow", n)
        await asyncio.sleep(0.2)  # the third message reaches the full queue
        with pytest.raises(SlowConsumerError, match="fell 2 messages behind") as info:
            await slow.get()
        assert info.value.close_code == 1013
        assert slow.closed
        with pytest.raises(SlowConsumerError):
            async for _ in slow:
                pass


async def test_ten_thousand_idle_subscribers_stay_bounded() -> None:
    channels = Channels("memory://", history=0)
    subscriptions = [channels.subscribe("busy", max_queue=8) for _ in range(10_000)]
    for subscription in subscriptions:
        await subscription.start()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(200):
            await channels.publish("busy", {"n": n, "pad": "x" * 100})
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(len(s) <= 8 + 1 for s in subscriptions)  # 8 messages and one gap record
    # 10,000 queues of 8 shared messages: a few MB, not 10,000 x 200 copies.
    assert grown < 16 * 1024 * 1024, grown
    first = subscriptions[0]
    gap = await first.get()
    assert isinstance(gap, Gap)
    assert (gap.after, gap.missed, gap.reason) == (0, 192, "overflow")
    for subscription in subscriptions:
        await subscription.close()
    assert channels.hub().states == {}
    await channels.close()


async def test_a_publish_from_another_thread_reaches_this_loop() -> None:
    channels = Channels()
    async with channels.subscribe("c") as subscription:
        thread = threading.Thread(target=lambda: asyncio.run(channels.publish("c", "hello")))
        thread.start()
        thread.join()
        (item,) = await take(subscription, 1)
        assert isinstance(item, Message)
        assert (item.id, item.data) == (1, "hello")


async def test_bad_input_is_named() -> None:
    with pytest.raises(ImproperlyConfigured, match="Unsupported channels URL 'amqp://x'"):
        Channels("amqp://x")
    with pytest.raises(ChannelsError, match="history must be"):
        Channels(history=-1)
    with pytest.raises(ChannelsError, match="overflow policy 'block'"):
        Channels(on_overflow="block")  # type: ignore[arg-type]
    with pytest.raises(ChannelsError, match="max_queue must be a positive integer"):
        Channels(max_queue=0)
    channels = Channels(max_message_size=64)
    with pytest.raises(ChannelsError, match="non-empty string"):
        await channels.publish("", 1)
    with pytest.raises(ChannelsError, match="control characters"):
        await channels.publish("a\nb", 1)
    with pytest.raises(ChannelsError, match="above max_message_size=64"):
        await channels.publish("c", "x" * 100)
    with pytest.raises(TypeError):
        await channels.publish("c", object())
    with pytest.raises(ChannelsError, match="max_queue"):
        channels.subscribe("c", max_queue=0)
    assert repr(Channels("redis://user:secret@localhost:1/0")) == (
        "Channels('redis://user:***@localhost:1/0')"
    )


async def test_a_message_above_the_notify_limit_is_delivered(make_channels) -> None:
    # PostgreSQL's NOTIFY payload stops at 8000 bytes: such a message travels by reference.
    channels = make_channels(history=0)
    big = {"blob": "é" * 20_000}
    async with channels.subscribe("big") as subscription:
        await channels.publish("big", "small")
        await channels.publish("big", big)
        await channels.publish("big", "after")
        items = await take(subscription, 3)
    assert summary(items) == [("big", 1, "small"), ("big", 2, big), ("big", 3, "after")]


async def test_delete_forgets_a_channel(make_channels) -> None:
    channels = make_channels(history=5)
    await channels.publish("room", 1)
    await channels.publish("room", 2)
    await channels.delete("room")
    assert await channels.last_id("room") == 0
    assert await channels.history("room") == []
    assert await channels.publish("room", "again") == 1
    async with channels.subscribe("room", last_ids={"room": 2}) as subscription:
        (gap,) = await take(subscription, 1)
    assert summary([gap]) == [("gap", "room", 2, None, "reset")]
