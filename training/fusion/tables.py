"""Markdown tables of the fusion report (pure formatting of the JSON results)."""

from __future__ import annotations

from collections.abc import Sequence


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def unimodal_table(sets: Sequence[dict]) -> str:
    """Per set and matcher: cross-validated verification EER; per feature and classifier: rank-1 and EER."""
    rows = []
    for s in sets:
        for r in s["verification"]:
            if r["kind"] == "single":
                rows.append([s["name"], r["scheme"], "cosine/Miura (verification)", "-", pct(r["eer"]),
                             f"{r['genuine_pairs']} / {r['impostor_pairs']}"])
        for r in s.get("identification", []):
            rows.append([s["name"], r["feature"], r["classifier"], pct(r["rank1"]), pct(r["eer"]),
                         f"{r['genuine']} / {r['impostor']} ({r['probes']} probes)"])
    return _table(["set", "feature", "classifier", "rank-1", "EER", "genuine / impostor"], rows)


def fusion_rule_table(sets: Sequence[dict]) -> str:
    """Feature level vs score level per rule (EER per normalization) with the best single matcher beside."""
    rows = []
    for s in sets:
        ver = s["verification"]
        singles = [r for r in ver if r["kind"] == "single"]
        best = min(singles, key=lambda r: r["eer"])
        count = f"{best['genuine_pairs']} / {best['impostor_pairs']}"
        rows.append([s["name"], f"best single: {best['scheme']}", pct(best["eer"]), "", "", count])
        for r in ver:
            if r["kind"] == "feature":
                rows.append([s["name"], f"feature level: {r['scheme']}", pct(r["eer"]), "", "", count])
        by_rule: dict[str, dict[str, float]] = {}
        for r in ver:
            if r["kind"] == "score":
                rule, method = r["scheme"].split("/")
                by_rule.setdefault(rule, {})[method] = r["eer"]
        for rule, m in by_rule.items():
            rows.append([s["name"], f"score level: {rule}", pct(m.get("minmax")), pct(m.get("zscore")),
                         pct(m.get("tanh")), count])
    return _table(["set", "scheme", "EER (min-max)", "EER (z-score)", "EER (tanh)", "genuine / impostor"], rows)


def far_frr_table(sets: Sequence[dict]) -> str:
    rows = []
    for s in sets:
        for r in s["verification"]:
            rows.append([s["name"], r["scheme"], r["kind"], pct(r["far"]), pct(r["frr"]), pct(r["eer"]),
                         f"{r['genuine_pairs']} / {r['impostor_pairs']}"])
    return _table(["set", "scheme", "level", "FAR", "FRR", "EER", "genuine / impostor"], rows)


def ms(x: float) -> str:
    return f"{x:.3g}" if x >= 0.001 else f"{x * 1000:.2g} us"


def timing_table(timings: dict[str, dict]) -> str:
    rows = [[stage, t["modality"], ms(t["median_ms"]), ms(t["p95_ms"]), t["n"], t["what"]]
            for stage, t in timings.items()]
    return _table(["stage", "modality", "median ms", "p95 ms", "n", "what is timed"], rows)


def target_table(targets: Sequence[dict]) -> str:
    rows = [[t["set"], t["best_single"], pct(t["best_single_eer"]), t["scheme"], pct(t["fused_eer"]),
             t["status"] if t["met"] else f"**{t['status']}**", pct(t.get("feature_eer")),
             t.get("feature_status", "-") if t.get("feature_met", True) else f"**{t['feature_status']}**",
             t["pairs"]] for t in targets]
    return _table(["set", "best single matcher", "its EER", "score-level scheme", "its EER", "vs best single",
                   "feature-level EER", "vs best single", "genuine / impostor"], rows)


def enhancement_table(rows: Sequence[dict]) -> str:
    out = [[r["set"], r["method"], r["n"], f"{r['mean']:.1f}", f"{r['variance']:.0f}", f"{r['psnr']:.1f}",
            f"{r['ssim']:.3f}", f"{r['epi']:.3f}", f"{r['contrast_gain']:.2f}", pct(r.get("eer")), r.get("pairs", "")]
           for r in rows]
    return _table(["set", "method", "images", "mean", "variance", "PSNR dB", "SSIM", "EPI", "contrast gain",
                   "Log-Gabor EER", "genuine / impostor"], out)
