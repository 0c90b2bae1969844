"""What a dataset folder holds: identities x impressions, image sizes, formats, bit depths, unreadable files.

Why decode everything here when the loaders do not: ``info`` is the one place a user asks "is this set usable?",
so it opens every file (with a progress bar) and lists the ones that fail, with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from device.errors import ImageError
from device.imageio import read_image_info
from training.data.loaders import DatasetIndex, natural_key

_MAX_LISTED = 20  # unreadable/skipped files printed per dataset in text form (JSON lists all)


@dataclass
class DatasetSummary:
    """Counts for one dataset (or one sensor subset)."""

    name: str
    layout: str
    identities: int
    images: int
    impressions_min: int
    impressions_max: int
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> count
    formats: Counter = field(default_factory=Counter)  # "png" -> count
    depths: Counter = field(default_factory=Counter)  # "8-bit grey" -> count
    attributes: dict[str, Counter] = field(default_factory=dict)  # attribute -> value -> count
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) from loading
    checked: bool = True
    quality_modality: str | None = None  # set when quality was checked
    quality: Counter = field(default_factory=Counter)  # "ok" or the reason's first words -> count


def summarize(
    index: DatasetIndex, check: bool = True, split: bool = False, progress: bool = True, quality: str | None = None
) -> list[DatasetSummary]:
    """One summary per dataset (``split``: per sensor subset); ``check`` decodes every image.

    ``quality`` ("fingerprint", "vein" or "auto": vein when the dataset's name says so) also preprocesses every
    image and counts the quality verdicts, to see whether a set from a new sensor is usable.
    """
    from device.progress import tqdm

    parts = index.subsets() if split else index.datasets()
    show = None if (progress and check) else True  # None: tqdm shows the bar only on a terminal
    bar = tqdm(total=len(index), unit="img", desc="reading", disable=show, leave=False)
    summaries = []
    for name in sorted(parts, key=natural_key):
        modality = _modality(name, quality) if (quality and check) else None
        summaries.append(_summarize_one(name, parts[name], check, bar, modality))
    bar.close()
    return summaries


def _modality(name: str, quality: str) -> str:
    if quality != "auto":
        return quality
    return "vein" if "vein" in name.lower() else "fingerprint"


def _summarize_one(name: str, part: DatasetIndex, check: bool, bar: Any, modality: str | None) -> DatasetSummary:
    groups = part.identities()
    counts = [len(v) for v in groups.values()] or [0]
    summary = DatasetSummary(name, part.layout, len(groups), len(part), min(counts), max(counts), checked=check)
    summary.quality_modality = modality
    summary.skipped = [(str(p), r) for p, r in part.skipped]
    for sample in part.samples:
        for key, value in sample.attributes.items():
            summary.attributes.setdefault(key, Counter())[value] += 1
        if not check:
            summary.formats[sample.path.suffix.lower().lstrip(".") or "?"] += 1
            continue
        try:
            grey, info = read_image_info(sample.path)
        except ImageError as exc:
            summary.unreadable.append((str(sample.path), _strip_path(str(exc), str(sample.path))))
        else:
            summary.sizes[f"{info.width}x{info.height}"] += 1
            summary.formats[info.format] += 1
            kind = "grey" if info.channels == 1 else "colour" if info.channels == 3 else f"{info.channels}-channel"
            summary.depths[f"{info.bit_depth}-bit {kind}"] += 1
            if modality:
                summary.quality[_verdict(grey, modality)] += 1
        bar.update(1)
    return summary


def _verdict(grey: Any, modality: str) -> str:
    from device.preprocess import preprocess

    reason = preprocess(grey, modality).quality.reason
    return "ok" if reason is None else reason.split(":")[0].split(";")[0].split(" (")[0]


def _strip_path(message: str, path: str) -> str:
    return message[len(path) + 2 :] if message.startswith(path + ": ") else message


def _counter_text(counter: Counter, limit: int = 6) -> str:
    items = counter.most_common()
    text = ", ".join(f"{k} ({v})" for k, v in items[:limit])
    return text + (f", ... {len(items) - limit} more" if len(items) > limit else "")


def format_text(summaries: list[DatasetSummary]) -> str:
    """Human-readable report, one block per dataset and a total line."""
    lines: list[str] = []
    for s in summaries:
        per = f"{s.impressions_min}" if s.impressions_min == s.impressions_max else (
            f"{s.impressions_min}-{s.impressions_max}")
        lines.append(f"{s.name} [{s.layout}]: {s.identities} identities x {per} impressions = {s.images} images")
        if s.checked:
            lines.append(f"  sizes (WxH): {_counter_text(s.sizes) or '-'}")
            lines.append(f"  formats: {_counter_text(s.formats) or '-'}; depth: {_counter_text(s.depths) or '-'}")
        else:
            lines.append(f"  extensions: {_counter_text(s.formats)} (not decoded: --no-check)")
        for key, values in sorted(s.attributes.items()):
            lines.append(f"  {key}: {_counter_text(values)}")
        if s.quality_modality:
            judged = sum(s.quality.values())
            rate = s.quality["ok"] / judged if judged else 0.0
            problems = Counter({k: v for k, v in s.quality.items() if k != "ok"})
            lines.append(
                f"  quality ({s.quality_modality}): {rate:.1%} pass"
                + (f"; {_counter_text(problems)}" if problems else "")
            )
        if s.checked:
            lines.append(f"  unreadable: {len(s.unreadable)}")
            lines.extend(f"    {p}: {r}" for p, r in s.unreadable[:_MAX_LISTED])
        if s.skipped:
            lines.append(f"  skipped while loading: {len(s.skipped)}")
            lines.extend(f"    {p}: {r}" for p, r in s.skipped[:_MAX_LISTED])
        for listed in (s.unreadable, s.skipped):
            if len(listed) > _MAX_LISTED:
                lines.append(f"    ... {len(listed) - _MAX_LISTED} more (use --json for all)")
    total = sum(s.images for s in summaries)
    bad = sum(len(s.unreadable) for s in summaries)
    skipped = sum(len(s.skipped) for s in summaries)
    checked = f"{bad} unreadable" if all(s.checked for s in summaries) else "not decoded"
    lines.append(f"total: {len(summaries)} dataset(s), {total} images, {checked}, {skipped} skipped")
    return "\n".join(lines)


def to_json(summaries: list[DatasetSummary]) -> dict[str, Any]:
    """JSON-ready dict (stable keys) for ``biolock data info --json``."""
    return {
        "datasets": [
            {
                "name": s.name,
                "layout": s.layout,
                "identities": s.identities,
                "images": s.images,
                "impressions_per_identity": {"min": s.impressions_min, "max": s.impressions_max},
                "sizes": dict(s.sizes.most_common()),
                "formats": dict(s.formats.most_common()),
                "bit_depths": dict(s.depths.most_common()),
                "attributes": {k: dict(v.most_common()) for k, v in sorted(s.attributes.items())},
                "checked": s.checked,
                "quality": None
                if not s.quality_modality
                else {
                    "modality": s.quality_modality,
                    "pass_rate": s.quality["ok"] / max(sum(s.quality.values()), 1),
                    "verdicts": dict(s.quality.most_common()),
                },
                "unreadable": [{"path": p, "reason": r} for p, r in s.unreadable],
                "skipped": [{"path": p, "reason": r} for p, r in s.skipped],
            }
            for s in summaries
        ],
        "total_images": sum(s.images for s in summaries),
    }
