"""``biolock data``: look at datasets and make synthetic ones."""

from __future__ import annotations

import click


@click.group("data")
def command() -> None:
    """Inspect datasets and generate synthetic ones.

    \b
    Example:
      biolock data info ../shared/data
    """
