"""Registers the training subgroup; its commands import TensorFlow lazily."""

from training.cli import train as command

__all__ = ["command"]
