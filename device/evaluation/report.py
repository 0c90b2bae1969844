"""The plain-text report of ``biolock eval``: one block per set, every number with its pair count."""

from __future__ import annotations


def _pct(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{100 * v:.{digits}f} %"


def _fmr(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.4f} %" if v else "0"


def format_report(result: dict) -> str:
    lines = [f"decision: {result['decision']} ({result['matcher']})",
             f"card: {result.get('card') or 'none (no thresholds: levels not scored)'}", ""]
    for s in result["sets"]:
        lines.append(f"{s['set']}: {s['identities']} fingers, {s['images']} images, failures to acquire "
                     f"{s['failures_to_acquire']} ({_pct(s['fta_rate'], 1)})")
        ext = s["extract_ms_median"]
        single = s["compare_ms_single"]
        lines.append(f"  time: extraction {'n/a' if ext is None else f'{ext:.1f} ms'} per image (median), "
                     f"comparison {'n/a' if single is None else f'{single:.3f} ms'} single, "
                     f"{s['compare_ms_per_pair']:.4f} ms per pair batched")
        for proto, p in s["protocols"].items():
            head = f"  [{proto}] genuine {p['genuine_pairs']:,} / impostor {p['impostor_pairs']:,} pairs"
            if "eer_fvc" not in p:
                lines.append(f"{head}: {p.get('note', '')}")
                continue
            lines.append(f"{head}: EER {_pct(p['eer_fvc'])} (FVC rule) / {_pct(p['eer_linear'])} (linear), "
                         f"FNMR@FMR1% {_pct(p['fnmr_at_fmr_1e-2'])}, FNMR@FMR0.1% "
                         f"{_pct(p['fnmr_at_fmr_1e-3']) if p['fnmr_at_fmr_1e-3'] is not None else 'n/a (<1,000 imp.)'}"
                         f", ZeroFMR {_pct(p['zero_fmr'])}")
            for level, r in (p.get("levels") or {}).items():
                shown = "claim shown" if r["bound_reaches_claim"] else "claim NOT shown by this count"
                lines.append(f"    {level:<10} t={r['threshold']:.4f}: FMR {_fmr(r['fmr'])} ({r['false_matches']}/"
                             f"{r['impostor_pairs']:,}, 95 % bound {_fmr(r['fmr_upper95'])}, claim "
                             f"{_fmr(r['claim'])}: {shown}), FNMR {_pct(r['fnmr'])}")
        lines.append("")
    return "\n".join(lines).rstrip()
