"""GPIO unlock on gpiozero's MockFactory: pulse length, active-low, LED, door sensor, exit button, contract 8."""

from __future__ import annotations

import threading

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from device.config import GpioUnlockConfig, UnlockConfig
from device.errors import UnlockError
from device.unlock import CompositeUnlocker, NullUnlocker, Unlocker, build_unlocker
from device.unlock.gpio_zero import build_gpiozero_unlocker
from device.unlock.pulse import ManualScheduler


@pytest.fixture
def factory():
    f = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = f
    yield f
    f.reset()
    Device.pin_factory = previous


def levels(pin) -> list[bool]:
    """The pin's recorded electrical levels, consecutive duplicates removed."""
    out: list[bool] = []
    for st in pin.states:
        if not out or out[-1] != bool(st.state):
            out.append(bool(st.state))
    return out


def test_pulse_length_is_what_was_asked_and_relay_drops_after(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=sched)
    pin = factory.pin(17)
    assert pin.state is False
    unl.grant(1500, "alice")
    assert pin.state is True
    assert sched.requested[-1] == pytest.approx(1.5)
    sched.advance(1.499)
    assert pin.state is True
    sched.advance(0.002)
    assert pin.state is False
    assert levels(pin) == [False, True, False]
    unl.close()


def test_active_low_relay_idles_high_and_pulls_low(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=22, active_low=True),
                                  scheduler=sched)
    pin = factory.pin(22)
    assert pin.state is True  # idle = locked = high on an active-low board
    unl.grant(200, "bob")
    assert pin.state is False
    sched.advance(0.2)
    assert pin.state is True
    unl.close()
    assert pin.state is True or pin.function == "input"  # closed lines are released, never left pulling low


def test_configured_pulse_ms_overrides_requested_duration(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17, pulse_ms=300), scheduler=sched)
    unl.grant(5000, "x")
    assert sched.requested == [pytest.approx(0.3)]
    unl.close()


def test_regrant_restarts_the_countdown(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=sched)
    pin = factory.pin(17)
    unl.grant(1000, "a")
    sched.advance(0.8)
    unl.grant(1000, "b")
    sched.advance(0.8)
    assert pin.state is True  # the first timer was cancelled
    sched.advance(0.3)
    assert pin.state is False
    unl.close()


def test_led_follows_relay_and_blinks_on_deny(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17, status_led_pin=27),
                                  scheduler=sched)
    led = factory.pin(27)
    unl.deny("unknown finger")
    sched.advance(2.0)
    assert levels(led) == [False, True, False, True, False, True, False]
    unl.grant(500, "ok")
    assert led.state is True
    sched.advance(0.5)
    assert led.state is False
    unl.close()


@pytest.mark.parametrize("open_level", ["high", "low"])
def test_door_sensor_reads_open_and_closed(factory, open_level):
    unl = build_gpiozero_unlocker(
        GpioUnlockConfig(backend="gpiozero", relay_pin=17, door_sensor_pin=5, door_open_level=open_level),
        scheduler=ManualScheduler(),
    )
    pin = factory.pin(5)
    pin.drive_high()
    assert unl.door_open() is (open_level == "high")
    pin.drive_low()
    assert unl.door_open() is (open_level == "low")
    assert unl.status()["door_open"] is (open_level == "low")
    unl.close()


def test_no_door_sensor_means_unknown(factory):
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=ManualScheduler())
    assert unl.door_open() is None
    unl.close()


def test_exit_button_pulses_the_relay(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17, exit_button_pin=6,
                                                   pulse_ms=400), scheduler=sched)
    relay, button = factory.pin(17), factory.pin(6)
    button.drive_low()  # pressed: switch to ground against the pull-up; gpiozero calls back on its thread
    for _ in range(500):
        if relay.state is True:
            break
        threading.Event().wait(0.01)
    assert relay.state is True
    assert unl.grants == 1
    sched.advance(0.4)
    assert relay.state is False
    unl.close()


def test_relay_that_does_not_read_back_is_an_unlock_error(factory):
    sched = ManualScheduler()
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=sched)
    unl.relay.is_active = lambda: False  # a line stuck low (shorted driver): grant must not claim success
    with pytest.raises(UnlockError, match="read back"):
        unl.grant(300, "x")
    assert factory.pin(17).state is False
    unl.close()


def test_grant_after_close_fails_closed(factory):
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=ManualScheduler())
    unl.close()
    with pytest.raises(UnlockError):
        unl.grant(300, "x")


def test_pin_in_use_is_a_typed_error(factory):
    first = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=ManualScheduler())
    with pytest.raises(UnlockError, match="17"):
        build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17), scheduler=ManualScheduler())
    first.close()


def test_real_timer_releases_relay(factory):
    unl = build_gpiozero_unlocker(GpioUnlockConfig(backend="gpiozero", relay_pin=17))
    pin = factory.pin(17)
    unl.grant(50, "short")
    assert pin.state is True
    for _ in range(500):  # wait for the background timer, up to 5 s; no assertion on how long it took
        if pin.state is False:
            break
        threading.Event().wait(0.01)
    assert pin.state is False
    unl.close()


def test_build_unlocker_contract(factory, tmp_path):
    null = build_unlocker(UnlockConfig(), tmp_path)
    assert isinstance(null, NullUnlocker) and isinstance(null, Unlocker)
    null.grant(1000, "nothing configured")
    null.deny("no")
    assert null.grants == [(1000, "nothing configured")] and null.denials == ["no"]
    gpio = build_unlocker(UnlockConfig(gpio=GpioUnlockConfig(backend="gpiozero", relay_pin=23)), tmp_path)
    assert isinstance(gpio, Unlocker)
    gpio.grant(100, "x")
    assert factory.pin(23).state is True
    gpio.close()
    assert factory.pin(23).state is False or factory.pin(23).function == "input"


def test_composite_stops_at_first_failure_and_denies_everywhere():
    class Failing(NullUnlocker):
        def grant(self, duration_ms, reason):
            raise UnlockError("lock did not answer")

        def deny(self, reason):
            raise RuntimeError("boom")

    after = NullUnlocker()
    comp = CompositeUnlocker([Failing(), after])
    with pytest.raises(UnlockError):
        comp.grant(1000, "x")
    assert after.grants == []  # the relay behind the failed lock did not fire
    comp.deny("no")
    assert after.denials == ["no"]
    comp.close()


@pytest.mark.parametrize("bad", [0, -5, 60_001, 1.5, True, "100"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(UnlockError):
        NullUnlocker().grant(bad, "x")


def test_null_unlocker_history_is_bounded():
    from device.unlock.base import NullUnlocker

    null = NullUnlocker()
    for k in range(NullUnlocker.HISTORY + 50):
        null.grant(1000, f"g{k}")
        null.deny(f"d{k}")
    assert len(null.grants) == len(null.denials) == NullUnlocker.HISTORY
    assert null.grants[-1] == (1000, f"g{NullUnlocker.HISTORY + 49}") and null.denials[0] == "d50"
