"""``biolock train``: training, evaluation, reports and export.

Every subcommand imports TensorFlow (and other heavy training dependencies) inside its function body, so
``biolock --help`` and all device commands start without them.
"""

from __future__ import annotations

import click


@click.group("train")
def train() -> None:
    """Train, evaluate and export embedding models (needs the `train` extra).

    \b
    Example:
      biolock train fit --modality fingerprint --data out/synth-fp
    """
