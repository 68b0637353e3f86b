"""The MQTT client both sides of sync use: aiomqtt's, made to keep a stop request.

aiomqtt waits for CONNACK, SUBACK and PUBACK with `asyncio.wait_for`, which on Python 3.11
drops a cancellation that arrives in the same loop iteration as the acknowledgement (see
`shared.cancellation`). A kiosk heartbeat loop cancelled during a publish then went back to
sleep and never stopped. Each call here re-raises the cancellation after aiomqtt returns.
"""

from __future__ import annotations

from typing import Any, Self

import aiomqtt

from shared.cancellation import raise_if_cancelling


class SubscriptionRefused(aiomqtt.MqttError):
    """The broker refused a subscription (its ACL): the client reconnects with backoff, and
    logs why each time."""


def _refused(code: object) -> bool:
    failure = getattr(code, "is_failure", None)
    if isinstance(failure, bool):
        return failure
    return isinstance(code, int) and code >= 0x80


class MqttClient(aiomqtt.Client):
    """`aiomqtt.Client` whose calls never swallow a cancellation of the calling task."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        try:
            raise_if_cancelling()
        except BaseException:
            # Asked to stop while connecting: leave the broker cleanly, then stop.
            await super().__aexit__(None, None, None)
            raise
        return self

    async def publish(self, /, *args: Any, **kwargs: Any) -> None:
        await super().publish(*args, **kwargs)
        raise_if_cancelling()

    async def subscribe(self, /, *args: Any, **kwargs: Any) -> Any:
        """Subscribes; a filter the broker refuses (SUBACK 0x80, an ACL) raises.

        Raises:
            SubscriptionRefused: the broker refused a filter; silently receiving nothing
                would look like a quiet fleet.
        """
        granted = await super().subscribe(*args, **kwargs)
        raise_if_cancelling()
        codes = granted if isinstance(granted, list | tuple) else [granted]
        if any(_refused(code) for code in codes):
            raise SubscriptionRefused(f"the broker refused the subscription {args[:1]!r}")
        return granted

    async def unsubscribe(self, /, *args: Any, **kwargs: Any) -> None:
        await super().unsubscribe(*args, **kwargs)
        raise_if_cancelling()
