"""Fixtures for the hardware tests: rigs for every door-bank backend, and gpiozero's MockFactory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from door_rigs import BusRig, DoorRig, FakeRig, GpioRig, SerialRig
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from kiosk.hardware.protocols import BoardProtocol


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    """gpiozero's MockFactory as the default pin factory, restored afterwards."""
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


def _make_rig(kind: str, request: pytest.FixtureRequest) -> DoorRig:
    if kind == "fake":
        return FakeRig()
    if kind == "gpio":
        return GpioRig(request.getfixturevalue("mock_factory"))
    return SerialRig(BoardProtocol.parse(kind.removeprefix("serial-")))


@pytest.fixture(params=["fake", "gpio", "serial-8a80", "serial-kerong"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[DoorRig]:
    """Every door-bank backend, one at a time."""
    made = _make_rig(request.param, request)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture(params=["fake", "serial-8a80", "serial-kerong"])
async def bus_rig(request: pytest.FixtureRequest) -> AsyncIterator[BusRig]:
    """The backends whose board can stop answering."""
    made = _make_rig(request.param, request)
    assert isinstance(made, BusRig)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture(params=["serial-8a80", "serial-kerong"])
async def serial_rig(request: pytest.FixtureRequest) -> AsyncIterator[SerialRig]:
    """The serial backend against the simulator, over a real pseudo-terminal, per protocol."""
    made = SerialRig(BoardProtocol.parse(request.param.removeprefix("serial-")))
    try:
        yield made
    finally:
        await made.aclose()
