"""``biolock vein``: finger-vein tools (the region found on whole NIR frames)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("vein")
def command() -> None:
    """Finger-vein tools: see where the finger region is found on whole camera frames.

    \b
    Example:
      biolock vein regions ../shared/data/vein/nir_raw_frames --out regions.png
    """


@command.command("regions")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Montage PNG to write (each frame with the finger edges in red, the normalized region below).")
@click.option("--columns", type=click.IntRange(1, 20), default=6, show_default=True, help="Tiles per row.")
def regions(folder: Path, out: Path, columns: int) -> None:
    """Find the finger region on every image under FOLDER and write a montage PNG.

    Prints one line per frame (the tilt found, or why no region was found) and exits 1 if any frame had none.

    \b
    Example:
      biolock vein regions ../shared/data/vein/nir_raw_frames --out regions.png
    """
    import cv2

    from device.errors import ImageError
    from device.vein.montage import find_all, frames_in, montage

    paths = frames_in(folder)
    if not paths:
        raise ImageError(f"no images under {folder}")
    results = find_all(paths, folder)
    for r, _ in results:
        if r.region is not None:
            click.echo(f"{r.name}: finger found, tilt {r.region.angle_deg:+.1f} deg, width {r.region.width_px:.0f} px"
                       + (" (ready crop)" if r.region.is_crop else ""))
        else:
            click.echo(f"{r.name}: {r.reason}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), montage(results, columns)):
        raise ImageError(f"could not write {out}")
    found = sum(r.region is not None for r, _ in results)
    click.echo(f"finger region found on {found} of {len(results)} frames; montage: {out}")
    if found < len(results):
        raise SystemExit(1)
