"""The GPIO backend on gpiozero's MockFactory: pulse shape, wiring variants, pin hygiene."""

from __future__ import annotations

import asyncio
import time

import pytest
from door_rigs import TIMING, GpioRig, gpio_config
from gpiozero.pins.mock import MockFactory

from hardware_sim.gpio_doors import SimulatedGpioDoors
from kiosk.hardware.gpio_bank import GpioBankConfig, GpioDoorBank, GpioDoorPins


async def test_unlock_energises_the_solenoid_for_the_pulse_length(
    mock_factory: MockFactory,
) -> None:
    config = GpioBankConfig({1: GpioDoorPins(solenoid=5, sensor=6)}, pulse_s=0.05)
    SimulatedGpioDoors(mock_factory, config)
    solenoid = mock_factory.pin(5)
    async with GpioDoorBank(config, TIMING) as bank:
        solenoid.clear_states()

        assert (await bank.unlock(1)).opened

    assert [state.state for state in solenoid.states] == [False, True, False]
    solenoid.assert_states_and_times([(0.0, False), (0.0, True), (0.05, False)])


@pytest.mark.parametrize(
    "wiring",
    [
        {},
        {"solenoid_active_high": False},
        {"sensor_pull_up": False},
        {"sensor_active_when_closed": False},
        {"sensor_pull_up": False, "sensor_active_when_closed": False},
    ],
    ids=["default", "active-low-solenoid", "pull-down", "normally-closed-switch", "both"],
)
async def test_every_wiring_reads_shut_doors_and_opens_them(
    mock_factory: MockFactory, wiring: dict[str, bool]
) -> None:
    rig = GpioRig(mock_factory, gpio_config(**wiring))
    try:
        states = await rig.bank.read_states()
        assert not any(state.is_open for state in states.values())
        assert (await rig.bank.unlock(2)).opened
        assert [door for door in rig.bank.doors if rig.is_open(door)] == [2]
    finally:
        await rig.aclose()


async def test_a_cancelled_unlock_leaves_the_solenoid_off(mock_factory: MockFactory) -> None:
    config = GpioBankConfig({1: GpioDoorPins(solenoid=5, sensor=6)}, pulse_s=1.0)
    SimulatedGpioDoors(mock_factory, config)
    async with GpioDoorBank(config, TIMING) as bank:
        task = asyncio.create_task(bank.unlock(1))
        await asyncio.sleep(0.02)
        assert mock_factory.pin(5).state, "energised mid-pulse"

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert not mock_factory.pin(5).state


async def test_simultaneous_unlocks_respect_the_supply_limit(mock_factory: MockFactory) -> None:
    config = GpioBankConfig(
        {1: GpioDoorPins(5, 6), 2: GpioDoorPins(12, 13)}, pulse_s=0.05, max_simultaneous_pulses=1
    )
    SimulatedGpioDoors(mock_factory, config)
    async with GpioDoorBank(config, TIMING) as bank:
        started = time.monotonic()
        results = await asyncio.gather(bank.unlock(1), bank.unlock(2))

    assert all(result.opened for result in results)
    assert time.monotonic() - started >= 0.1


async def test_closing_the_bank_releases_its_pins(mock_factory: MockFactory) -> None:
    config = gpio_config()
    SimulatedGpioDoors(mock_factory, config)
    first = GpioDoorBank(config, TIMING)
    await first.aclose()

    second = GpioDoorBank(config, TIMING)
    await second.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await second.read_states()


def test_a_pin_used_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="pin 5 is used by doors 1 and 2"):
        GpioBankConfig({1: GpioDoorPins(5, 6), 2: GpioDoorPins(7, 5)})


@pytest.mark.parametrize("pulse_s", [0, 6])
def test_a_pulse_outside_five_seconds_is_refused(pulse_s: float) -> None:
    with pytest.raises(ValueError, match="pulse_s"):
        GpioBankConfig({1: GpioDoorPins(5, 6)}, pulse_s=pulse_s)
