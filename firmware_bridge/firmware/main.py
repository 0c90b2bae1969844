# biolock lock controller firmware for the Raspberry Pi Pico (RP2040), MicroPython.
#
# Wiring (change the constants to suit): UART0 TX=GP0 RX=GP1 to the host's UART (3.3 V, crossed over, common
# ground); relay driver on GP15; door reed switch GP14 to ground (internal pull-up: open door reads 1); status
# LED on the on-board LED pin; pair button GP13 to ground, held during power-up to forget the key and accept a
# new PAIR. Copy lockproto.py, x25519.py, lockfw.py and main.py to the board (mpremote cp ... :).
#
# The same file runs under CPython in the tests with firmware_bridge.shim installed as `machine`.

import os
import time

import machine
from lockfw import FlashStore, LockController

UART_ID = 0
BAUD = 115200
TX_PIN = 0
RX_PIN = 1
RELAY_PIN = 15
DOOR_PIN = 14
PAIR_PIN = 13
LED_PIN = "LED"
FLASH_ROOT = ""


class MonotonicMs:
    """A non-wrapping millisecond clock built from ticks_ms/ticks_diff (ticks wrap after ~12 days)."""

    def __init__(self):
        self.last = time.ticks_ms()
        self.total = 0

    def __call__(self):
        now = time.ticks_ms()
        self.total += time.ticks_diff(now, self.last)
        self.last = now
        return self.total


def build(flash_root=FLASH_ROOT):
    uart = machine.UART(UART_ID, baudrate=BAUD, tx=machine.Pin(TX_PIN), rx=machine.Pin(RX_PIN), rxbuf=512)
    relay = machine.Pin(RELAY_PIN, machine.Pin.OUT, value=0)
    door = machine.Pin(DOOR_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    pair = machine.Pin(PAIR_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    led = machine.Pin(LED_PIN, machine.Pin.OUT, value=0)
    return LockController(uart, relay, FlashStore(flash_root, os), MonotonicMs(), os.urandom, door=door, led=led,
                          pairing=pair.value() == 0)


def run(controller, should_stop=None):
    wdt = machine.WDT(timeout=2000)  # a hung loop resets the board, and a reset boots with the relay off
    controller.feed_watchdog = wdt.feed  # fed inside X25519 too: pairing takes a noticeable part of a second on a Pico
    while should_stop is None or not should_stop():
        controller.poll()
        wdt.feed()
        time.sleep_ms(1)


if __name__ == "__main__":
    run(build())
