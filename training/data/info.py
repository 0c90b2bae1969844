"""What a dataset folder holds: identities x impressions, image sizes, formats, bit depths, unreadable files.

Why decode everything here when the loaders do not: ``info`` is the one place a user asks "is this set usable?",
so it opens every file (with a progress bar) and lists the ones that fail, with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from device.errors import ImageError
from device.imageio import probe_image
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


def summarize(
    index: DatasetIndex, check: bool = True, split: bool = False, progress: bool = True
) -> list[DatasetSummary]:
    """One summary per dataset (``split``: per sensor subset); ``check`` decodes every image."""
    from tqdm import tqdm

    parts = index.subsets() if split else index.datasets()
    show = None if (progress and check) else True  # None: tqdm shows the bar only on a terminal
    bar = tqdm(total=len(index), unit="img", desc="reading", disable=show, leave=False)
    summaries = []
    for name in sorted(parts, key=natural_key):
        summaries.append(_summarize_one(name, parts[name], check, bar))
    bar.close()
    return summaries


def _summarize_one(name: str, part: DatasetIndex, check: bool, bar: Any) -> DatasetSummary:
    groups = part.identities()
    counts = [len(v) for v in groups.values()] or [0]
    summary = DatasetSummary(name, part.layout, len(groups), len(part), min(counts), max(counts), checked=check)
    summary.skipped = [(str(p), r) for p, r in part.skipped]
    for sample in part.samples:
        for key, value in sample.attributes.items():
            summary.attributes.setdefault(key, Counter())[value] += 1
        if not check:
            summary.formats[sample.path.suffix.lower().lstrip(".") or "?"] += 1
            continue
        try:
            info = probe_image(sample.path)
        except ImageError as exc:
            summary.unreadable.append((str(sample.path), _strip_path(str(exc), str(sample.path))))
        else:
            summary.sizes[f"{info.width}x{info.height}"] += 1
            summary.formats[info.format] += 1
            kind = "grey" if info.channels == 1 else "colour" if info.channels == 3 else f"{info.channels}-channel"
            summary.depths[f"{info.bit_depth}-bit {kind}"] += 1
        bar.update(1)
    return summary


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
                "unreadable": [{"path": p, "reason": r} for p, r in s.unreadable],
                "skipped": [{"path": p, "reason": r} for p, r in s.skipped],
            }
            for s in summaries
        ],
        "total_images": sum(s.images for s in summaries),
    }
