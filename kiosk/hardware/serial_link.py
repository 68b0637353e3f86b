"""One RS-485 bus as request/response exchanges: timeouts, retries, one request at a time.

`SerialLink` owns the serial port of a lock-board bus. Each exchange writes one request and waits
for the one reply that matches it, within a timeout, retrying a few times; a reply that fails its
checksum or does not parse is noise, not an answer.

Why blocking pyserial in a worker thread (``asyncio.to_thread``) rather than non-blocking reads
on the event loop: pyserial's timeouts are already right for a request/response bus, the same code
works on every platform pyserial supports (``loop.add_reader`` on a serial fd is POSIX-only), and
an exchange is short (tens of milliseconds at 9600 baud) so one thread at a time is cheap. Two
locks keep the bus single-file: an ``asyncio.Lock`` so waiting requests queue on the loop instead
of tying up executor threads, and a ``threading.Lock`` held for the whole exchange inside the
thread, because a cancelled coroutine does not stop its thread and the next request must not
interleave with it on the wire.

pyserial is imported when the port is first opened, so importing this module works on any laptop.

A port that fails is a port failure whatever the library raises: pyserial's ``SerialException``
is an ``OSError``, but ``reset_input_buffer`` on a port whose adapter was unplugged (or whose
device went away) raises ``termios.error``, which is not. Both become `PortError`, the handle is
dropped and the next exchange reopens the port, so the door monitor's backoff is the whole
recovery and nothing above the link sees a library error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol, TypeVar, cast

from kiosk.hardware.errors import (
    BoardTimeout,
    ChecksumError,
    LockBoardError,
    MalformedFrame,
    PortError,
)
from kiosk.hardware.protocols.framing import FrameReader, FrameSpec

log = logging.getLogger(__name__)

T = TypeVar("T")


def _port_failures() -> tuple[type[Exception], ...]:
    try:
        import termios  # POSIX only; elsewhere pyserial reports port failures as OSError
    except ImportError:  # pragma: no cover - not on the kiosk's Linux
        return (OSError,)
    return (OSError, termios.error)


PORT_FAILURES = _port_failures()
"""What the port itself raises when it fails (unplugged adapter, board power, a gone pty)."""


class SerialPort(Protocol):
    """The part of ``serial.Serial`` a link uses."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def open_serial_port(port: str, baudrate: int, timeout: float) -> SerialPort:
    """Opens ``port`` 8N1 for exclusive use (a second program on the bus would corrupt it).

    Raises:
        PortError: pyserial is missing, or the port cannot be opened.
    """
    try:
        import serial  # lazy: only a kiosk with a lock-board bus needs pyserial
    except ImportError as error:
        raise PortError("pyserial is not installed; it is needed for RS-485 lock boards") from error
    try:
        handle = serial.Serial(port=port, baudrate=baudrate, timeout=timeout, exclusive=True)
    except (OSError, ValueError) as error:
        raise PortError(f"cannot open serial port {port}: {error}") from error
    return cast(SerialPort, handle)


class SerialLink:
    """A lock-board bus on one serial port.

    The port is opened on first use and reopened after a port failure, so a USB adapter that is
    unplugged and plugged back recovers without a restart.

    Args:
        port: Device path (``/dev/ttyUSB0``, or a simulator's pseudo-terminal).
        baudrate: Line speed; the protocol's default when the configuration has none.
        request_timeout_s: How long one attempt waits for its reply.
        retries: Further attempts after the first fails.
        opener: Opens the port; `open_serial_port` unless a test supplies another.

    Raises:
        ValueError: on construction, for a non-positive timeout or a negative retry count.
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        *,
        request_timeout_s: float = 0.25,
        retries: int = 2,
        opener: Callable[[str, int, float], SerialPort] = open_serial_port,
    ) -> None:
        if not request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be positive, got {request_timeout_s!r}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries!r}")
        self.port = port
        self.baudrate = baudrate
        self.request_timeout_s = request_timeout_s
        self.retries = retries
        self._opener = opener
        self._handle: SerialPort | None = None
        self._closed = False
        self._async_lock = asyncio.Lock()
        self._bus_lock = threading.Lock()
        self._holder: asyncio.Task[object] | None = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Keeps the bus for the calling task: its exchanges in the block run one after the
        other with no other request between them (others queue until the block ends)."""
        async with self._async_lock:
            self._holder = asyncio.current_task()
            try:
                yield
            finally:
                self._holder = None

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        if self._holder is not None and self._holder is asyncio.current_task():
            yield  # inside this task's own `hold`
            return
        async with self._async_lock:
            yield

    async def exchange(
        self,
        request: bytes,
        reply: FrameSpec[T],
        accept: Callable[[T], bool],
        *,
        what: str,
        retries: int | None = None,
    ) -> T:
        """Sends ``request`` and returns the first reply frame that ``accept`` takes.

        Stale input is dropped before each attempt, so a late answer to an earlier request cannot
        answer this one; decoded frames that ``accept`` refuses (another board's, an echo) are
        skipped.

        Args:
            request: The encoded request frame.
            reply: The kind of frame that answers it.
            accept: Whether a decoded frame is the answer to this request.
            what: The request in words, for errors and logs ("status of board 2").
            retries: Overrides the link's retry count for this exchange.

        Raises:
            BoardTimeout: no bytes at all came back, on every attempt.
            ChecksumError: the last attempt got only frames with bad checksums.
            MalformedFrame: the last attempt got only bytes that are no valid frame.
            PortError: the port failed on the last attempt.
        """
        attempts = 1 + (self.retries if retries is None else retries)
        async with self._turn():
            result = await asyncio.to_thread(self._run, request, reply, accept, what, attempts, 0.0)
        return cast(T, result)

    async def send(self, request: bytes, *, what: str, listen_s: float) -> None:
        """Sends ``request`` with no reply expected, then discards what arrives for ``listen_s``.

        For commands that some boards answer and some do not: listening out the answer keeps the
        next request from colliding with it on a half-duplex bus. Not retried (there is no reply
        to miss); callers confirm the effect with a status exchange.

        Raises:
            PortError: the port failed.
        """
        async with self._turn():
            await asyncio.to_thread(self._run, request, None, None, what, 1, listen_s)

    async def aclose(self) -> None:
        """Closes the port; later exchanges raise `PortError`. Idempotent."""
        async with self._async_lock:
            await asyncio.to_thread(self._close_for_good)

    def _run(
        self,
        request: bytes,
        reply: FrameSpec[T] | None,
        accept: Callable[[T], bool] | None,
        what: str,
        attempts: int,
        listen_s: float,
    ) -> T | None:
        with self._bus_lock:
            failure: LockBoardError | None = None
            for attempt in range(1, attempts + 1):
                try:
                    handle = self._open()
                    handle.reset_input_buffer()
                    handle.write(request)
                    handle.flush()
                    log.debug("sent %s: %s", what, request.hex(" "))
                    if reply is None or accept is None:
                        self._listen(handle, listen_s)
                        return None
                    return self._await_reply(handle, reply, accept, what)
                except PORT_FAILURES as error:
                    self._drop_handle()
                    failure = PortError(f"serial port {self.port} failed during {what}: {error}")
                except (BoardTimeout, ChecksumError, MalformedFrame) as error:
                    failure = error
                if attempt < attempts:
                    log.warning("%s, attempt %d of %d: %s", what, attempt, attempts, failure)
            assert failure is not None
            raise failure

    def _await_reply(
        self, handle: SerialPort, spec: FrameSpec[T], accept: Callable[[T], bool], what: str
    ) -> T:
        reader = FrameReader(spec)
        received = 0
        deadline = time.monotonic() + self.request_timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            handle.timeout = remaining
            data = handle.read(1)
            if not data:
                break
            data += handle.read(handle.in_waiting)
            received += len(data)
            for frame in reader.feed(data):
                if accept(frame):
                    log.debug("reply to %s: %s", what, frame)
                    return frame
                log.debug("ignored %s while waiting for the reply to %s", frame, what)
        window = f"within {self.request_timeout_s:g} s"
        error = reader.last_error
        if isinstance(error, ChecksumError):
            raise ChecksumError(f"no valid reply to {what} {window}; last: {error}", error.frame)
        if isinstance(error, MalformedFrame):
            raise MalformedFrame(f"no valid reply to {what} {window}; last: {error}", error.frame)
        if received:
            raise MalformedFrame(
                f"no {spec.name} in {received} bytes received for {what} {window}",
                reader.pending,
            )
        raise BoardTimeout(f"no reply to {what} {window}")

    def _listen(self, handle: SerialPort, listen_s: float) -> None:
        deadline = time.monotonic() + listen_s
        while (remaining := deadline - time.monotonic()) > 0:
            handle.timeout = remaining
            data = handle.read(max(1, handle.in_waiting))
            if data:
                log.debug("discarded after send: %s", data.hex(" "))

    def _open(self) -> SerialPort:
        if self._closed:
            raise PortError(f"the link on {self.port} is closed")
        if self._handle is None:
            self._handle = self._opener(self.port, self.baudrate, self.request_timeout_s)
        return self._handle

    def _close_for_good(self) -> None:
        with self._bus_lock:
            self._closed = True
            self._drop_handle()

    def _drop_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except PORT_FAILURES as error:
                log.warning("closing %s: %s", self.port, error)
