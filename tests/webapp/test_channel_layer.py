"""The channel layer as configured: a cancelled receive always ends.

Every websocket disconnect cancels its consumer's pending `receive`. With a client socket timeout,
redis-py sends under `asyncio.wait_for`, and Python 3.11's `wait_for` swallows a cancellation that
lands as the send completes; channels_redis then loops BZPOPMIN forever in the cancelled task (a
receive loop leaked per disconnect, and the hang `make test` had at event-loop teardown). Cancelling
at random moments early in a receive hit that window in most tries before the fix.
"""

from __future__ import annotations

import asyncio
import random

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.conf import settings


def test_it_has_no_client_socket_timeout():
    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]

    assert host["socket_timeout"] is None


async def test_a_cancelled_receive_always_ends(redis_server):
    rng = random.Random(7)
    layers, stuck = [], 0
    for _ in range(40):
        # A fresh layer each time, as a new Daphne process has: the race is in its first connect.
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        layers.append(layer)
        channel = await layer.new_channel()
        receive = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(rng.random() * 0.003)  # cancel somewhere in connect / send / read
        receive.cancel()
        done, _ = await asyncio.wait([receive], timeout=3)
        stuck += not done
    for layer in layers:
        await layer.flush()  # closes the pools: a receive that kept running ends with an error

    assert stuck == 0, f"{stuck} of 40 cancelled receives kept running"
