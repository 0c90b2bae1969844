"""``biolock data``: look at datasets and make synthetic ones."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("data")
def command() -> None:
    """Inspect datasets and generate synthetic ones.

    \b
    Example:
      biolock data info ../shared/data
    """


@command.command("info")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--layout",
    type=click.Choice(["auto", "manifest", "fvc", "socofing", "sdumla", "folder"]),
    default="auto",
    show_default=True,
    help="Force a folder layout instead of detecting it.",
)
@click.option("--subsets", is_flag=True, help="Report each sensor subset (e.g. FVC DB1_B) on its own.")
@click.option("--no-check", is_flag=True, help="Do not decode the images (fast; sizes and depths unknown).")
@click.option(
    "--quality",
    type=click.Choice(["auto", "fingerprint", "vein"]),
    default=None,
    help="Also preprocess every image and report the quality pass rate and reasons (auto: vein if the "
    "dataset name says so).",
)
def info(path: Path, as_json: bool, layout: str, subsets: bool, no_check: bool, quality: str | None) -> None:
    """Show what a dataset folder or manifest.csv holds: identities x impressions, image sizes, formats,
    bit depths, and the files that cannot be read (with the reason).

    \b
    Example:
      biolock data info ../shared/data
      biolock data info ~/SOCOFing --json
      biolock data info ~/my-sensor --quality fingerprint
    """
    import json

    from training.data.info import format_text, summarize, to_json
    from training.data.loaders import load_dataset

    index = load_dataset(path, layout=layout)
    summaries = summarize(index, check=not no_check, split=subsets, progress=not as_json, quality=quality)
    click.echo(json.dumps(to_json(summaries), indent=2) if as_json else format_text(summaries))


from training.synth.cli import calibrate as _calibrate  # noqa: E402  (light: click only at import time)
from training.synth.cli import synth as _synth  # noqa: E402

command.add_command(_synth)
command.add_command(_calibrate)
