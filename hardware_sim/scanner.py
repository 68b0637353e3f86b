"""A simulated barcode scanner on a pseudo-terminal.

Serial (or USB-CDC) scanners send each scanned code as ASCII followed by a terminator, CR by
default on most models (configurable on the scanner: CR, LF or CR LF). `SimulatedScanner.scan`
does the same; `SimulatedScanner.write_raw` sends anything, for noise and split-line tests.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from hardware_sim.pty_device import PtyDevice


class SimulatedScanner:
    """A scanner that the kiosk reads at `path`.

    Args:
        terminator: What follows each code.

    Raises:
        ValueError: on construction, for a terminator other than CR, LF or CR LF.
    """

    def __init__(self, terminator: bytes = b"\r") -> None:
        if terminator not in (b"\r", b"\n", b"\r\n"):
            raise ValueError(f"scanners end codes with CR, LF or CR LF, not {terminator!r}")
        self.terminator = terminator
        self._pty = PtyDevice(name="scanner")

    @property
    def path(self) -> str:
        """The device path the kiosk opens."""
        return self._pty.path

    def scan(self, code: str) -> None:
        """Sends ``code`` as the scanner would after reading a barcode.

        Raises:
            ValueError: ``code`` is empty, not ASCII, or contains a line break.
        """
        if not code or not code.isascii() or "\r" in code or "\n" in code:
            raise ValueError(f"a scanned code is non-empty ASCII on one line, got {code!r}")
        self._pty.write(code.encode("ascii") + self.terminator)

    def write_raw(self, data: bytes) -> None:
        """Sends ``data`` unchanged."""
        self._pty.write(data)

    def start(self) -> None:
        self._pty.start()

    def stop(self) -> None:
        self._pty.stop()

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
