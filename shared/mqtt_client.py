"""The MQTT client both sides of sync use: aiomqtt's, made to keep a stop request and to close
what a failed connection attempt opened.

aiomqtt waits for CONNACK, SUBACK and PUBACK with `asyncio.wait_for`, which on Python 3.11
drops a cancellation that arrives in the same loop iteration as the acknowledgement (see
`shared.cancellation`). A kiosk heartbeat loop cancelled during a publish then went back to
sleep and never stopped. Each call here re-raises the cancellation after aiomqtt returns.

aiomqtt 2.5 also leaves the socket of a connection attempt open when the attempt fails after
the TCP connection was made: cancelled while paho connects in its executor thread or while
waiting for CONNACK (a kiosk or worker stopped mid-reconnect), or CONNACK not arriving within
``timeout``. The socket stays registered with the event loop, and aiomqtt's keepalive task
keeps pinging the broker for a client nobody holds; the socket is finalised whenever the loop
ends, as ``ResourceWarning: unclosed <socket.socket ...>`` (seen as a flaky test under
warnings-as-errors). `MqttClient.__aenter__` closes it before it re-raises.

And aiomqtt 2.5 stores a lost connection as an ``MqttCodeError`` in a future that only its
message iterator reads; its exit returns early on a lost connection without reading it. When
the task iterating messages was cancelled first (a kiosk or worker stopping as the broker went
away), asyncio logged "Future exception was never retrieved" whenever the future was collected.
`MqttClient.__aexit__` reads it: the loss was already handled by whoever saw it.

aiomqtt has one ``timeout`` for every wait; `MqttClient` takes a shorter ``connack_timeout`` for
the CONNACK alone. A broker cluster node whose JetStream has lost a stream leader (NATS: a node
just died) holds the CONNACK for as long as the election takes, and a client better spends that
time trying the next node (docs/protocol.md, "Broker cluster"); a slow PUBACK on a connection
that is up is no reason to drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Self

import aiomqtt

from shared.cancellation import raise_if_cancelling

CONNECT_CALL_WAIT_S = 10.0
"""How long a failed attempt waits for paho's blocking connect (in aiomqtt's executor thread)
to return before closing its socket; paho's own TCP connect timeout is 5 s."""


class SubscriptionRefused(aiomqtt.MqttError):
    """The broker refused a subscription (its ACL): the client reconnects with backoff, and
    logs why each time."""


def _refused(code: object) -> bool:
    failure = getattr(code, "is_failure", None)
    if isinstance(failure, bool):
        return failure
    return isinstance(code, int) and code >= 0x80


class MqttClient(aiomqtt.Client):
    """`aiomqtt.Client` whose calls never swallow a cancellation of the calling task, and whose
    failed connection attempts leave no socket open."""

    def __init__(self, *args: Any, connack_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connack_timeout = connack_timeout
        self._connect_returned = asyncio.Event()
        # Whether paho's connect call has started (it may never: a cancelled
        # `run_in_executor` cancels a call still queued for a worker thread), or been called
        # off by a failed attempt before it started; under the lock, so exactly one happens.
        self._connect_state_lock = threading.Lock()
        self._connect_started = False
        self._connect_called_off = False

    def _client_connect(self) -> None:
        # Runs in aiomqtt's executor thread; a cancelled `run_in_executor` does not stop a call
        # already running, so a failed attempt must know when the socket it may open exists.
        # Set through the loop, after paho's own call_soon_threadsafe registrations of that
        # socket.
        with self._connect_state_lock:
            if self._connect_called_off:
                return
            self._connect_started = True
        try:
            super()._client_connect()
        finally:
            self._loop.call_soon_threadsafe(self._connect_returned.set)

    async def __aenter__(self) -> Self:
        if self._lock.locked():
            return await super().__aenter__()  # aiomqtt refuses a reentrant use
        self._connect_returned = asyncio.Event()
        self._connect_started = self._connect_called_off = False
        # aiomqtt reads ``self.timeout`` when it starts waiting for the CONNACK.
        timeout = self.timeout
        if self._connack_timeout is not None:
            self.timeout = self._connack_timeout
        try:
            await super().__aenter__()
        except BaseException:
            await self._close_attempt()
            raise
        finally:
            self.timeout = timeout
        try:
            raise_if_cancelling()
        except BaseException:
            # Asked to stop while connecting: leave the broker cleanly, then stop.
            await super().__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await super().__aexit__(*exc_info)
        finally:
            lost = self._disconnected
            if lost.done() and not lost.cancelled():
                lost.exception()  # marks it retrieved; nothing else would read it now

    async def _close_attempt(self) -> None:
        """Closes the socket of an attempt that failed (no DISCONNECT: its will is due)."""
        loop = asyncio.get_running_loop()
        with self._connect_state_lock:
            started = self._connect_started
            self._connect_called_off = not started
        if started:
            returned = asyncio.ensure_future(self._connect_returned.wait())
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([returned], timeout=CONNECT_CALL_WAIT_S)
            finally:
                returned.cancel()
        sock = self._client.socket()
        if sock is not None:
            fileno = sock.fileno()
            if fileno >= 0:
                loop.remove_reader(fileno)
                loop.remove_writer(fileno)
            sock.close()
        if self._misc_task is not None:
            self._misc_task.cancel()

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
