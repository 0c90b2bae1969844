"""Typed errors for the device package.

Every failure a user can cause or fix is a ``BiolockError``: the CLI turns it into one line and a non-zero
exit code instead of a traceback. ``exit_code`` 1 is reserved for "rejected" (verify/identify), so errors
start at 2.
"""

from __future__ import annotations


class BiolockError(Exception):
    """Base of every error biolock reports to a user."""

    exit_code = 2


class ConfigError(BiolockError):
    """The configuration file or a value in it is invalid."""


class ImageError(BiolockError):
    """An image could not be read or has an unusable format."""


class DatasetError(BiolockError):
    """A dataset folder or manifest cannot be used."""


class SensorError(BiolockError):
    """The sensor failed, timed out or answered something invalid."""

    exit_code = 3


class ModelError(BiolockError):
    """A model file or its model card is missing, invalid or inconsistent."""


class StoreError(BiolockError):
    """The template store is damaged, locked or was opened with the wrong key."""


class KeyError_(BiolockError):
    """A key is missing, malformed or wrong (named with a trailing underscore: KeyError is a builtin)."""


class UnlockError(BiolockError):
    """The unlock signal could not be delivered."""

    exit_code = 4
