"""Summaries of the fusion report: the primary scheme and target check, the enhancement winner, the device card.

The primary fused scheme is the score-level scheme with the lowest mean EER over the *synthetic* sets (the real
sets never choose it); each set's target compares it with that set's best single matcher on the same test pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def write_device_card(features: dict, pairs: Sequence[tuple[str, str, str, str]], scheme: str,
                      path: Path) -> str | None:
    """Write the device fusion card from the first multimodal pairing whose both parts have deep features.

    The card always uses a *weighted* sum with the primary scheme's normalization: the device fuses just two
    matchers of very different strength, and learned weights let a weak one count for little (equal weights can
    make the pair worse than its better half).
    """
    from training.fusion.card_builder import write_card
    from training.fusion.sets import pair_multimodal

    for fp_name, vein_name, name, note in pairs:
        (fp_set, fp_feats), (vein_set, vein_feats) = features[fp_name], features[vein_name]
        if "deep" not in fp_feats.blocks or "deep" not in vein_feats.blocks:
            continue
        m = pair_multimodal(fp_set, vein_set, name, note)
        emb = {"fingerprint": fp_feats.blocks["deep"][m.parts["fp"][1]],
               "vein": vein_feats.blocks["deep"][m.parts["vein"][1]]}
        models = {"fingerprint": fp_feats.deep_model, "vein": vein_feats.deep_model}
        card_scheme = f"weighted_sum/{scheme.split('/')[1]}"
        return str(write_card(path, emb, models, m.labels, card_scheme, f"{name}: {m.describe()}"))
    return None


def compare(fused: float, best: float) -> tuple[str, bool]:
    """Status text and whether the target (fused below the best single, or both at 0) is met."""
    if fused < best:
        return "lower", True
    if fused == best == 0:
        return "equal (both 0 %)", True
    return ("equal" if fused == best else "higher"), False


def choose_primary_and_targets(results: list[dict], default: str) -> tuple[list[dict], str]:
    synth = [r for r in results if r["name"].startswith("synthetic")]
    score_names = {v["scheme"] for r in synth for v in r["verification"] if v["kind"] == "score"}
    primary = default
    if score_names:
        def mean_eer(name: str) -> float:
            return float(np.mean([v["eer"] for r in synth for v in r["verification"] if v["scheme"] == name]))

        primary = min(sorted(score_names), key=mean_eer)
    targets = []
    for r in results:
        singles = [v for v in r["verification"] if v["kind"] == "single"]
        fused = next((v for v in r["verification"] if v["scheme"] == primary), None)
        if not singles or fused is None:
            continue
        best = min(singles, key=lambda v: v["eer"])
        row = {"set": r["name"], "best_single": best["scheme"], "best_single_eer": best["eer"], "scheme": primary,
               "fused_eer": fused["eer"], "pairs": f"{fused['genuine_pairs']} / {fused['impostor_pairs']}"}
        row["status"], row["met"] = compare(fused["eer"], best["eer"])
        feature = next((v for v in r["verification"] if v["kind"] == "feature"), None)
        if feature is not None:
            row["feature_scheme"], row["feature_eer"] = feature["scheme"], feature["eer"]
            row["feature_status"], row["feature_met"] = compare(feature["eer"], best["eer"])
        targets.append(row)
    return targets, primary


def enhancement_winner(rows: list[dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    by_mod: dict[str, dict[str, list]] = {}
    for r in rows:
        mod = r["modality"]
        by_mod.setdefault(mod, {}).setdefault(r["method"], []).append((r["eer"], -r["epi"]))
    for mod, methods in by_mod.items():
        out[mod] = min(methods, key=lambda m: (np.mean([e for e, _ in methods[m]]),
                                               np.mean([p for _, p in methods[m]])))
    return out
