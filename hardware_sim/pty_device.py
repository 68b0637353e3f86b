"""A pseudo-terminal that plays a serial device: the kiosk opens its path like ``/dev/ttyUSB0``.

The simulator keeps the master end and a background thread that hands every chunk of bytes the
kiosk writes to a callback. Both ends are put in raw mode: the protocols carry bytes such as 03
(^C), 11 (XON) and 13 (XOFF) that a terminal's line discipline would otherwise act on.

The simulator also keeps the slave end open for its whole life, so the master never sees a hang-up
(EIO) when the kiosk closes and reopens the port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)


class PtyDevice:
    """A pseudo-terminal with a reader thread on its master end.

    Args:
        on_bytes: Called in the reader thread with each chunk the other end writes. Exceptions
            are logged and the thread carries on.
        name: For the thread name and logs.

    Use as a context manager, or call `start` and `stop`.
    """

    def __init__(self, on_bytes: Callable[[bytes], None] | None = None, name: str = "pty") -> None:
        self._on_bytes = on_bytes
        self.name = name
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        # Non-blocking writes: with nobody reading the slave its buffer fills, and a real
        # device's bytes are then lost too, rather than the simulator hanging.
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0

    def start(self) -> None:
        """Starts the reader thread. Idempotent.

        Raises:
            RuntimeError: the device was stopped (a stopped device cannot be restarted).
        """
        if self._closed:
            raise RuntimeError(f"{self.name} on {self.path} is stopped")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"{self.name}-reader", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stops the thread and closes the pseudo-terminal. Idempotent."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def write(self, data: bytes) -> None:
        """Sends ``data`` to the program on the slave end; bytes that do not fit are dropped."""
        if self._closed:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                self.dropped += len(view)
                log.warning("%s: dropped %d bytes nobody read", self.name, len(view))
                return
            view = view[written:]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            readable, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in readable:
                return
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError as error:
                # EIO would mean no slave end is open, which cannot happen while we hold one.
                log.error("%s: reading the pty failed: %s", self.name, error)
                return
            if data and self._on_bytes is not None:
                try:
                    self._on_bytes(data)
                except Exception:
                    log.exception("%s: handling %s failed", self.name, data.hex(" "))
