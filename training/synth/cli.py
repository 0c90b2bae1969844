"""``biolock data synth`` and ``biolock data calibrate``: thin click shells over training.synth and training.calibrate.

Heavy imports stay inside the command bodies so ``biolock --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("synth")
@click.option("--modality", type=click.Choice(["fingerprint", "vein"]), required=True, help="What to generate.")
@click.option("--identities", type=int, required=True, help="Number of fingers (identities).")
@click.option("--impressions", type=int, default=8, show_default=True, help="Images per finger.")
@click.option("--profile", default=None,
              help="Sensor profile: r307, r307-gentle, optical500, capacitive192, capacitive96 (fingerprint; "
                   "default r307); roi, camera320, camera640 (vein; default roi).")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--force", is_flag=True, help="Replace the synthetic set in a non-empty output folder.")
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--altered", type=float, default=0.0, show_default=True,
              help="Fraction of fingerprint impressions with a SOCOFing-style alteration.")
def synth(modality: str, identities: int, impressions: int, profile: str | None, seed: int, out: Path, force: bool,
          workers: int, altered: float) -> None:
    """Generate a synthetic fingerprint or finger-vein dataset (PNGs + manifest.csv).

    \b
    Example:
      biolock data synth --modality fingerprint --identities 100 --impressions 8 --profile r307 --seed 1 --out out/fp
    """
    import time

    from training.synth import generate_dataset

    profile = profile or ("r307" if modality == "fingerprint" else "roi")
    t0 = time.monotonic()
    manifest = generate_dataset(modality, identities, impressions, profile, seed, out, force=force,
                                workers=workers, altered=altered)
    dt = time.monotonic() - t0
    click.echo(f"wrote {identities * impressions} images to {manifest.parent} in {dt:.1f} s "
               f"({dt / max(1, identities):.3f} s per identity); manifest: {manifest}")


@click.command("calibrate")
@click.option("--modality", type=click.Choice(["fingerprint", "vein"]), required=True)
@click.option("--real", "real", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder with the real sets' manifest.csv (e.g. ../shared/data).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where the table (markdown + JSON), synthetic sets and contact sheet go.")
@click.option("--profile", default=None, help="Synthetic profile to compare (default r307 / roi).")
@click.option("--identities", type=int, default=None, help="Synthetic identities (default: 10 fp, 100 vein).")
@click.option("--impressions", type=int, default=None, help="Synthetic impressions (default: 8 fp, 6 vein).")
@click.option("--seeds", default="1,2,3", show_default=True, help="Comma-separated synthetic seeds (one set each).")
@click.option("--max-real-identities", type=int, default=None,
              help="Use at most this many identities per real set (vein: the full FV-USM set takes a while).")
@click.option("--workers", type=int, default=2, show_default=True)
def calibrate(modality: str, real: Path, out: Path, profile: str | None, identities: int | None,
              impressions: int | None, seeds: str, max_real_identities: int | None, workers: int) -> None:
    """Compare synthetic and real sets with a classic yardstick (NBIS / Miura): EER, pair counts, statistics.

    Writes calibration.md, calibration.json and contact_sheet.png (real vs synthetic; keep it out of git).

    \b
    Example:
      biolock data calibrate --modality fingerprint --real ../shared/data --out out/calib-fp
    """
    from training.calibrate import run_calibration

    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    result = run_calibration(modality, real, out, profile=profile, identities=identities, impressions=impressions,
                             seeds=seed_list, max_real_identities=max_real_identities, workers=workers)
    click.echo(result.markdown)
    click.echo(f"wrote {result.markdown_path}, {result.json_path} and {result.sheet_path}")
