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
                all_note = (f"; all impostors: {pct(r['eer_all'])} at {r['genuine_pairs']} / "
                            f"{r['impostor_pairs_all']}" if "eer_all" in r else "")
                rows.append([s["name"], r["scheme"], "cosine/Miura (verification)", "-", pct(r["eer"]) + all_note,
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
        rows.append([s["name"], f"best single on test: {best['scheme']}", pct(best["eer"]), "", "", count])
        for r in ver:
            if r["kind"] in ("val-single", "greedy"):
                rows.append([s["name"], f"{r['scheme']} (chosen on validation)", pct(r["eer"]), "", "", count])
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
            all_pairs = f"{r['genuine_pairs']} / {r['impostor_pairs_all']}" if "impostor_pairs_all" in r else "-"
            rows.append([s["name"], r["scheme"], r["kind"], pct(r["far"]), pct(r["frr"]), pct(r["eer"]),
                         f"{r['genuine_pairs']} / {r['impostor_pairs']}", pct(r.get("far_all")),
                         pct(r.get("eer_all")), all_pairs])
    return _table(["set", "scheme", "level", "FAR", "FRR", "EER", "genuine / impostor", "FAR (all impostors)",
                   "EER (all impostors)", "genuine / impostor (all)"], rows)


def ms(x: float) -> str:
    return f"{x:.3g}" if x >= 0.001 else f"{x * 1000:.2g} us"


def timing_table(timings: dict[str, dict]) -> str:
    rows = [[stage, t["modality"], ms(t["median_ms"]), ms(t["p95_ms"]), t["n"], t["what"]]
            for stage, t in timings.items()]
    return _table(["stage", "modality", "median ms", "p95 ms", "n", "what is timed"], rows)


def _flag(status: str, met: bool) -> str:
    return status if met else f"**{status}**"


def target_table(targets: Sequence[dict]) -> str:
    """Headline fused scheme vs the best single matcher on validation (FVC pairs, then all impostor pairs)."""
    rows = []
    for t in targets:
        rows.append([t["set"], pct(t["fused_eer"]), f"{t['val_single']} {pct(t['val_single_eer'])}",
                     _flag(t["status"], t["met"]), t["pairs"], pct(t.get("fused_eer_all")),
                     pct(t.get("val_single_eer_all")),
                     _flag(t["status_all"], t["met_all"]) if "status_all" in t else "-", t.get("pairs_all", "-"),
                     f"{t['test_single']} {pct(t['test_single_eer'])}", pct(t.get("feature_eer"))])
    return _table(["set", "fused EER (FVC)", "best single on validation", "fused vs it", "genuine / impostor (FVC)",
                   "fused EER (all impostors)", "best single on validation (all)", "fused vs it",
                   "genuine / impostor (all)", "best single on test (FVC)", "feature-level EER (FVC)"], rows)


def choice_table(targets: Sequence[dict]) -> str:
    """What validation chose per fold: normalization, matchers and weights of the headline fused scheme."""
    return _table(["set", "best single on validation", "fused scheme chosen on validation (per fold)"],
                  [[t["set"], t["val_single"], t["choice"]] for t in targets])


def enhancement_table(rows: Sequence[dict]) -> str:
    out = [[r["set"], r["method"], r["n"], f"{r['mean']:.1f}", f"{r['variance']:.0f}", f"{r['psnr']:.1f}",
            f"{r['ssim']:.3f}", f"{r['epi']:.3f}", f"{r['contrast_gain']:.2f}", pct(r.get("eer")), r.get("pairs", "")]
           for r in rows]
    return _table(["set", "method", "images", "mean", "variance", "PSNR dB", "SSIM", "EPI", "contrast gain",
                   "Log-Gabor EER", "genuine / impostor"], out)
