"""An MQTT broker in-process (amqtt), for the demo and for a laptop without Mosquitto.

Production and CI use a real broker (Mosquitto; EMQX or HiveMQ at fleet scale). amqtt speaks MQTT
3.1.1 over TCP, which is all the sync protocol needs, but it has **no shared subscriptions**
(``$share/...``): with it, run one cloud sync worker and subscribe to the plain topic filter.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the machine's own broker holds 1883)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class EmbeddedBroker:
    """A running amqtt broker; stop it with `stop`.

    Attributes:
        host: The address it listens on.
        port: Its TCP port.
    """

    host: str
    port: int
    _broker: Any

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Shuts the broker down. Idempotent."""
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()


async def start_embedded_broker(host: str = "127.0.0.1", port: int | None = None) -> EmbeddedBroker:
    """Starts an anonymous, in-memory broker on ``port`` (a free one if not given).

    Must be called from the event loop that will serve it.
    """
    from amqtt.broker import Broker  # imported here: only the demo and tests need it

    chosen = port or free_port(host)
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{chosen}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    return EmbeddedBroker(host, chosen, broker)
