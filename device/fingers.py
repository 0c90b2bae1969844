"""Finger names: biolock's ``right-index`` and fprintd's ``right-index-finger`` mean the same finger.

Why a module of its own: the enrol, delete and list commands must agree on one canonical name per finger and
validate it before anything slow (loading the model, opening the sensor) happens. fprintd (``fprintd-enroll -f``)
names fingers ``left-thumb``, ``left-index-finger`` ... ``right-little-finger``; people also type ``right_index``
or ``Right Index``. All of them map to the canonical ``<side>-<digit>`` stored in the template store.
"""

from __future__ import annotations

import click

SIDES = ("left", "right")
DIGITS = ("thumb", "index", "middle", "ring", "little")
FINGERS = tuple(f"{side}-{digit}" for side in SIDES for digit in DIGITS)
DEFAULT_FINGER = "right-index"  # fprintd's default too


class UnknownFinger(ValueError):
    """A finger name that is neither biolock's nor fprintd's."""


def canonical_finger(name: str) -> str:
    """``right-index`` for ``right-index``, ``right-index-finger``, ``Right_Index`` or ``right index``."""
    text = "-".join(str(name).strip().lower().replace("_", "-").split())
    if text.endswith("-finger"):
        text = text[: -len("-finger")]
    if text not in FINGERS:
        raise UnknownFinger(f"unknown finger {name!r}; choose one of: {', '.join(FINGERS)} "
                            "(fprintd's names such as right-index-finger work too)")
    return text


def finger_option(default: str | None = DEFAULT_FINGER, help_text: str | None = None):
    """A click ``--finger`` option that validates and canonicalises at parse time (before any model loads)."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return canonical_finger(value)
        except UnknownFinger as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return click.option("--finger", default=default, show_default=default is not None, callback=convert,
                        metavar="FINGER",
                        help=help_text or "left-|right- thumb, index, middle, ring or little (fprintd's "
                        "right-index-finger etc. work too).")
