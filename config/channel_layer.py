"""The channel layer of production: channels_redis's Pub/Sub layer, with one addition.

Every event goes to each recipient's own group (dienstweg/events.py): a message with five
readers is five publications, and each of the four read frames that follow is five more.
channels_redis serializes and encrypts each publication on its own and sends it on its
own round trip, one after the other under the connection's lock: in a profile at 20
messages/s with read frames (py-spy --gil on bench/step4.py) its group_send held the
interpreter 15 % of the time. `group_send_many` serializes and encrypts an event once and
publishes it to all its groups in one pipelined round trip. What each group receives is
what group_send would have sent it.

It reaches into the layer's connection (its per-loop layer, shards and lock): the version
is bounded in pyproject.toml, and the messaging tests run on this class with Redis."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


class PubSubLayer(RedisPubSubChannelLayer):
    async def group_send_many(self, groups: Iterable[str], message: dict[str, Any]) -> None:
        """Send MESSAGE to every group of GROUPS, as group_send does to one."""
        layer = self._get_layer()
        payload = self.serialize(message)
        by_shard: dict[Any, list[str]] = {}
        for group in groups:
            channel = layer._get_group_channel_name(group)
            by_shard.setdefault(layer._get_shard(channel), []).append(channel)
        for shard, channels in by_shard.items():
            async with shard._lock:
                shard._ensure_redis()
                async with shard._redis.pipeline(transaction=False) as pipe:
                    for channel in channels:
                        pipe.publish(channel, payload)
                    await pipe.execute()
