"""The barcode/QR scanner: codes from a serial (or USB-CDC) scanner, one per line.

Scanners send each code as ASCII followed by CR, LF or CR LF, depending on their setup; the reader
accepts all three. Bytes are read in a worker thread in short slices, so that closing the iterator
(or cancelling its task) takes effect within ``read_slice_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from kiosk.hardware.errors import PortError
from kiosk.hardware.serial_link import SerialPort, open_serial_port

log = logging.getLogger(__name__)


class Scanner(Protocol):
    """Anything that yields scanned codes."""

    def codes(self) -> AsyncGenerator[str, None]:
        """Scanned codes, in order, for as long as the caller iterates."""
        ...


class CodeSplitter:
    """Splits a scanner's byte stream into codes.

    CR, LF and CR LF all end a code; empty lines are skipped and surrounding spaces stripped. A
    line longer than ``max_length`` (noise, a scanner in the wrong mode) is dropped whole, as is a
    line that is not ASCII; both are logged.

    Raises:
        ValueError: on construction, for a ``max_length`` below 1.
    """

    def __init__(self, max_length: int = 256) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length!r}")
        self.max_length = max_length
        self._line = bytearray()
        self._overflowed = False

    def feed(self, data: bytes) -> list[str]:
        """Adds ``data`` and returns the codes it completes."""
        codes: list[str] = []
        for byte in data:
            if byte in b"\r\n":
                code = self._finish_line()
                if code:
                    codes.append(code)
            elif not self._overflowed:
                self._line.append(byte)
                if len(self._line) > self.max_length:
                    log.warning("scanner line over %d bytes dropped", self.max_length)
                    self._line.clear()
                    self._overflowed = True
        return codes

    def _finish_line(self) -> str | None:
        line, overflowed = bytes(self._line), self._overflowed
        self._line.clear()
        self._overflowed = False
        if overflowed:
            return None
        try:
            return line.decode("ascii").strip()
        except UnicodeDecodeError:
            log.warning("scanner line is not ASCII, dropped: %s", line.hex(" "))
            return None


class SerialScanner:
    """A scanner on a serial port.

    Args:
        port: Device path (``/dev/ttyACM0``, or a simulator's pseudo-terminal).
        baudrate: Line speed (USB-CDC scanners ignore it).
        max_code_length: Longest code accepted.
        read_slice_s: Longest a single blocking read lasts.
        opener: Opens the port; pyserial unless a test supplies another.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        max_code_length: int = 256,
        read_slice_s: float = 0.1,
        opener: Callable[[str, int, float], SerialPort] = open_serial_port,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.max_code_length = max_code_length
        self.read_slice_s = read_slice_s
        self._opener = opener

    async def codes(self) -> AsyncGenerator[str, None]:
        """Opens the port and yields each scanned code; closes the port when iteration ends.

        Raises:
            PortError: the port cannot be opened, or fails while reading.
        """
        handle = await asyncio.to_thread(self._opener, self.port, self.baudrate, self.read_slice_s)
        splitter = CodeSplitter(self.max_code_length)
        try:
            while True:
                try:
                    data = await asyncio.to_thread(_read_some, handle)
                except OSError as error:
                    raise PortError(f"scanner port {self.port} failed: {error}") from error
                for code in splitter.feed(data):
                    yield code
        finally:
            handle.close()


def _read_some(handle: SerialPort) -> bytes:
    # Returns what is buffered, or waits up to the port's timeout for a first byte.
    return handle.read(max(1, handle.in_waiting))
