"""The scanner reader against the simulated scanner over a real pseudo-terminal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from hardware_sim.scanner import SimulatedScanner
from kiosk.hardware import PortError
from kiosk.hardware.scanner import CodeSplitter, SerialScanner


@pytest.fixture
def scanner() -> Iterator[SimulatedScanner]:
    with SimulatedScanner() as simulated:
        yield simulated


async def _take(codes: AsyncIterator[str], count: int) -> list[str]:
    async with asyncio.timeout(2.0):
        return [await anext(codes) for _ in range(count)]


async def test_scanned_codes_arrive_in_order(scanner: SimulatedScanner) -> None:
    codes = SerialScanner(scanner.path, read_slice_s=0.02).codes()
    try:
        first = asyncio.ensure_future(anext(codes))
        await asyncio.sleep(0.05)  # the port is open before the scans
        scanner.scan("JJD0001234567")
        scanner.scan("(00)340123450000000018")
        assert await asyncio.wait_for(first, 2.0) == "JJD0001234567"
        assert await _take(codes, 1) == ["(00)340123450000000018"]
    finally:
        await codes.aclose()


async def test_any_line_ending_and_split_writes_are_understood(scanner: SimulatedScanner) -> None:
    codes = SerialScanner(scanner.path, read_slice_s=0.02).codes()
    try:
        pending = asyncio.ensure_future(_take(codes, 3))
        await asyncio.sleep(0.05)
        scanner.write_raw(b"AB")
        await asyncio.sleep(0.03)
        scanner.write_raw(b"C1\r\nDEF2\n\n  GHI3 \r")
        assert await pending == ["ABC1", "DEF2", "GHI3"]
    finally:
        await codes.aclose()


async def test_a_missing_scanner_port_raises_port_error() -> None:
    with pytest.raises(PortError, match="cannot open"):
        await anext(SerialScanner("/dev/does-not-exist-scanner").codes())


def test_overlong_and_non_ascii_lines_are_dropped_whole() -> None:
    splitter = CodeSplitter(max_length=8)

    codes = splitter.feed(b"0123456789ABCDEF\rOK1\r\xff\xfe\rOK2\n")

    assert codes == ["OK1", "OK2"]


def test_a_code_can_carry_gs1_group_separators() -> None:
    assert CodeSplitter().feed(b"]C1010123\x1d10ABC\r") == ["]C1010123\x1d10ABC"]


def test_simulated_scanner_refuses_codes_a_scanner_cannot_send() -> None:
    with SimulatedScanner() as simulated, pytest.raises(ValueError, match="one line"):
        simulated.scan("two\nlines")
