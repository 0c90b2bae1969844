"""``biolock train fusion-report``: handcrafted + deep features, classifiers, feature- and score-level fusion,
unimodal and fingerprint + vein, measured on synthetic and real sets, written as markdown + JSON.

What is measured (protocols in training/fusion/scores.py and training/fusion/classifiers.py):
1. enhancement study: each method's quality measures and its effect on a Log-Gabor matcher's EER (raw image ->
   enhancement -> Log-Gabor -> cosine, FVC pairs of the whole set; the z-scores are fitted on the same set, so only
   the comparison between methods is meaningful);
2. unimodal verification per matcher (2-fold identity-disjoint cross-validation, FVC pairs within each test fold);
3. identification per feature and classifier (first half of each identity's impressions enrol, the rest probe);
4. feature-level vs score-level fusion per rule and normalization; FAR/FRR at the validation-EER threshold;
5. per-stage time in ms; 6. the target check: the headline fused scheme (greedy matcher selection + weighted sum,
   chosen per fold on validation scores, training/fusion/greedy.py) against the single matcher that is best on the
   same validation scores, on FVC and on all impostor pairs; the best single matcher on the test pairs is shown too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np

DEFAULT_PRIMARY = "weighted_sum/tanh"
STAGE_NOTES = {
    "enhancement": "device.preprocess (segmentation/ROI + contrast enhancement)",
    "loggabor": "Log-Gabor 4x6 features", "dog": "DoG features",
    "deep": "preprocess + LiteRT int8 embedding", "miura": "Miura maximum curvature",
    "line-tracking": "repeated line tracking", "wide-line": "wide line detector",
    "fusion": "normalize + fuse one pair's scores", "classification": "SVM (RBF) decision per probe",
}


def _matchers(feats, prefix: str = "", rows: Sequence[int] | None = None) -> dict:
    from training.fusion.extract import miura_score
    from training.fusion.scores import cosine_matcher, embedding_matcher, map_matcher

    pick = (lambda a: a) if rows is None else (lambda a: a[np.asarray(rows)])
    out = {}
    for name, block in feats.blocks.items():
        make = embedding_matcher if name == "deep" else cosine_matcher
        out[prefix + name] = make(pick(block))
    for name, maps in feats.maps.items():
        chosen = maps if rows is None else [maps[r] for r in rows]
        out[prefix + name] = map_matcher(chosen, miura_score)
    return out


def _identification(feats, labels, impressions, enrol: int) -> tuple[list[dict], list[float]]:
    from training import metrics
    from training.fusion.classifiers import CLASSIFIERS, identify, split_enrolment
    from training.fusion.selection import FeatureFusion

    train, test = split_enrolment(labels, impressions, enrol)
    ytr, yte = [labels[i] for i in train], [labels[i] for i in test]
    features = dict(feats.blocks)
    if len(features) > 1:
        fusion = FeatureFusion.fit({n: b[train] for n, b in feats.blocks.items()}, ytr, k=256)
        features["fused (concat + entropy)"] = fusion(feats.blocks)
    rows, svm_ms = [], []
    for fname, x in features.items():
        for clf in CLASSIFIERS:
            if clf == "cosine" and fname not in ("deep", "fused (concat + entropy)"):
                continue  # cosine over raw handcrafted blocks is the verification matcher already
            r = identify(clf, x[train], ytr, x[test], yte)
            if clf == "svm-rbf":
                svm_ms.append(r.predict_ms_per_probe)
            rows.append({"feature": fname, "classifier": clf, "rank1": r.rank1, "probes": r.probes,
                         "eer": metrics.eer(r.genuine, r.impostor).eer, "genuine": int(r.genuine.size),
                         "impostor": int(r.impostor.size)})
    return rows, svm_ms


def _enhancement_study(image_set, max_images: int = 40, cache_dir: Path | None = None) -> list[dict]:
    """Enhancement measures and Log-Gabor EER per method (cached like the features when ``cache_dir`` is set)."""
    from training.fusion.extract import _cache_key

    path = None
    if cache_dir is not None:
        path = cache_dir / f"enh-{image_set.modality}-{_cache_key(image_set.images, 'enh', max_images, 0)}.json"
        if path.is_file():
            return json.loads(path.read_text())
    rows = _measure_enhancements(image_set, max_images)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows))
    return rows


def _measure_enhancements(image_set, max_images: int) -> list[dict]:
    from device.features import extract_loggabor
    from device.vein_ops import orient_horizontal
    from training import enhancement as en
    from training import metrics
    from training.fusion.extract import LG_PARAMS
    from training.fusion.scores import cosine_matcher
    from training.protocol import fvc_pairs

    images = image_set.images
    if image_set.modality == "vein":
        images = [orient_horizontal(i) for i in images]
    rows = en.compare_enhancements(images[:max_images])
    g, i = (np.array(p, dtype=int).reshape(-1, 2) for p in fvc_pairs(image_set.labels, image_set.impressions))
    params = LG_PARAMS[image_set.modality]
    for row in rows:
        enhance = en.METHODS[row["method"]]
        feats = np.stack([extract_loggabor(enhance(im), params) for im in images])
        score = cosine_matcher(feats)
        every = np.arange(len(images))
        row.update(set=image_set.name, modality=image_set.modality, pairs=f"{len(g)} / {len(i)}",
                   eer=metrics.eer(score(every, g), score(every, i)).eer)
    return rows


def _timings(collected: dict[tuple[str, str], list[float]]) -> dict[str, dict]:
    out = {}
    for (stage, modality), values in sorted(collected.items()):
        v = np.asarray(values)
        out[f"{stage} ({modality})"] = {"modality": modality, "median_ms": float(np.median(v)),
                                        "p95_ms": float(np.percentile(v, 95)), "n": int(v.size),
                                        "what": STAGE_NOTES.get(stage, stage)}
    return out


def build_report(unimodal: Sequence, multimodal_pairs: Sequence[tuple[str, str, str, str]], out: Path,
                 embedders: dict | None = None, enhancement: bool = True, maps: bool = True,
                 card_path: Path | None = None, rlt_iterations: int = 1000, cache: bool = True) -> dict:
    """Measure everything on ``unimodal`` ImageSets and the (fp set, vein set, name, note) pairings; write files."""
    from training.fusion.extract import extract_all
    from training.fusion.scores import evaluate_fusion, feature_fusion_matcher
    from training.fusion.sets import pair_multimodal
    from training.fusion.summary import (
        choose_primary,
        enhancement_winner,
        headline_targets,
        summary_line,
        write_device_card,
    )
    from training.fusion.tables import (
        choice_table,
        enhancement_table,
        far_frr_table,
        fusion_rule_table,
        target_table,
        timing_table,
        unimodal_table,
    )

    embedders = embedders or {}
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results, features, times, enh_rows = [], {}, {}, []
    for s in unimodal:
        feats = extract_all(s.images, s.modality, embedders.get(s.modality), maps=maps, desc=s.name,
                            rlt_iterations=rlt_iterations, cache_dir=out / "cache" if cache else None)
        features[s.name] = (s, feats)
        for stage, values in feats.timings_ms.items():
            times.setdefault((stage, s.modality), []).extend(values)
        matchers = _matchers(feats)
        fl = {"concat(" + "+".join(feats.blocks) + ")+entropy": feature_fusion_matcher(feats.blocks, s.labels)}
        ver = evaluate_fusion(matchers, s.labels, s.impressions, fl)
        per = len(s.labels) // s.identities
        ident, svm_ms = _identification(feats, s.labels, s.impressions, max(1, per // 2))
        times.setdefault(("classification", s.modality), []).extend(svm_ms)
        for r in ver:
            if "fusion_us_per_pair" in r:
                times.setdefault(("fusion", s.modality), []).append(r["fusion_us_per_pair"] / 1000)
        results.append({"name": s.name, "modality": s.modality, "size": s.describe(), "note": s.note,
                        "rejected": feats.rejected, "low_quality": feats.low_quality, "deep_model": feats.deep_model,
                        "verification": ver, "identification": ident})
        if enhancement:
            enh_rows += _enhancement_study(s, cache_dir=out / "cache" if cache else None)
    for fp_name, vein_name, name, note in multimodal_pairs:
        (fp_set, fp_feats), (vein_set, vein_feats) = features[fp_name], features[vein_name]
        m = pair_multimodal(fp_set, vein_set, name, note)
        rows_fp, rows_vein = m.parts["fp"][1], m.parts["vein"][1]
        matchers = {**_matchers(fp_feats, "fp:", rows_fp), **_matchers(vein_feats, "vein:", rows_vein)}
        blocks = {f"fp:{n}": b[rows_fp] for n, b in fp_feats.blocks.items()}
        blocks.update({f"vein:{n}": b[rows_vein] for n, b in vein_feats.blocks.items()})
        fl = {"concat(all vectors)+entropy": feature_fusion_matcher(blocks, m.labels)}
        ver = evaluate_fusion(matchers, m.labels, m.impressions, fl)
        results.append({"name": name, "modality": "multimodal", "size": m.describe(), "note": note,
                        "verification": ver})
    targets, primary = headline_targets(results), choose_primary(results, DEFAULT_PRIMARY)
    card = write_device_card(features, multimodal_pairs, primary, card_path) if card_path else None
    report = {"card": card, "format": "biolock-fusion-report/1", "sets": results, "enhancement": enh_rows,
              "enhancement_winner": enhancement_winner(enh_rows), "timings": _timings(times),
              "primary_scheme": primary, "targets": targets, "summary_lines": [summary_line(t) for t in targets],
              "seconds": time.perf_counter() - started}
    (out / "report.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    md = ["# biolock fusion report", "",
          "Headline fused scheme: greedy forward matcher selection + weighted sum, normalization, matchers and "
          "weights chosen per fold on validation scores only; compared with the single matcher that is best on "
          f"the same validation scores. Took {report['seconds']:.0f} s.", "", "## Sets", ""]
    md += [f"- {r['name']} ({r['modality']}): {r['size']}" + (f"; {r['note']}" if r["note"] else "")
           + (f"; deep model {r['deep_model']}" if r.get("deep_model") else "") for r in results]
    md += ["", "## Target: fused EER below the best single matcher", "", target_table(targets), "",
           "FVC: impostor = first impression vs first impression within a test fold; all: every cross-identity "
           "pair within a test fold (same genuine pairs). Bold: the target is missed. 'a / b': fold 1 chose a, "
           "fold 2 b.", "",
           "### Summary lines", "", *[f"- {x}" for x in report["summary_lines"]], "",
           "### What validation chose", "", choice_table(targets), "",
           f"Fixed scheme setting the device card's normalization (lowest mean EER on the synthetic sets): "
           f"`{primary}`.", ""]
    md += [f"Device fusion card: {card or 'not written (needs deep models for both modalities)'}", ""]
    if enh_rows:
        md += ["## Enhancement", "", enhancement_table(enh_rows), "",
               "Winner by mean Log-Gabor EER per modality (ties: higher EPI): "
               + ", ".join(f"{k}: {v}" for k, v in report["enhancement_winner"].items()), ""]
    md += ["## Unimodal accuracy and EER per feature and classifier", "", unimodal_table(results), "",
           "## Feature level vs score level, per rule", "", fusion_rule_table(results), "",
           "## FAR / FRR / EER per scheme", "", far_frr_table(results), "",
           "## Per-stage time (ms)", "", timing_table(report["timings"]), ""]
    (out / "report.md").write_text("\n".join(md))
    return report


def _default_real() -> Path:
    import os

    env = os.environ.get("BIOLOCK_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@click.command("fusion-report")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for report.md, report.json and the fusion card.")
@click.option("--real", "real_root", type=click.Path(path_type=Path), default=None,
              help="Folder with manifest.csv of real sets (default: ../shared/data or $BIOLOCK_SHARED_DATA).")
@click.option("--no-real", is_flag=True, help="Synthetic sets only.")
@click.option("--synthetic-identities", type=click.IntRange(0, 10_000), default=30, show_default=True,
              help="Identities per synthetic set (0: no synthetic sets).")
@click.option("--impressions", type=click.IntRange(2, 20), default=6, show_default=True,
              help="Impressions per synthetic identity.")
@click.option("--vein-identities", type=click.IntRange(4, 10_000), default=40, show_default=True,
              help="How many FV-USM fingers to use (the classic extractors take ~1 s per image).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--fp-model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fingerprint model card for the deep features (default: the shipped one, if any).")
@click.option("--vein-model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Vein model card for the deep features (default: the shipped one, if any).")
@click.option("--no-enhancement", is_flag=True, help="Skip the enhancement study.")
@click.option("--no-card", is_flag=True, help="Do not write a device fusion card.")
def fusion_report(out_dir: Path, real_root: Path | None, no_real: bool, synthetic_identities: int, impressions: int,
                  vein_identities: int, seed: int, fp_model: Path | None, vein_model: Path | None,
                  no_enhancement: bool, no_card: bool) -> None:
    """Measure handcrafted, deep and fused matchers on synthetic and real sets; write the paper's tables.

    Writes OUT/report.md and OUT/report.json (and OUT/fusion_card.json for the device's `fusion` mode when both
    modalities have a deep model). Synthetic images are cached under OUT/synth.

    \b
    Example:
      biolock train fusion-report --out out/fusion --synthetic-identities 30 --vein-identities 40
    """
    from device.errors import DatasetError
    from training.fusion.extract import load_embedder
    from training.fusion.sets import real_sets, synthetic_set

    embedders, notes = {}, []
    for modality, card in (("fingerprint", fp_model), ("vein", vein_model)):
        emb, why = load_embedder(modality, str(card) if card else None)
        if emb is None:
            if card is not None:
                raise DatasetError(f"cannot load the {modality} model {card}: {why}")
            notes.append(f"no deep {modality} features: {why}")
        else:
            embedders[modality] = emb
    unimodal, pairs = [], []
    if synthetic_identities:
        fp = synthetic_set("fingerprint", synthetic_identities, impressions, seed, out_dir / "synth")
        vein = synthetic_set("vein", synthetic_identities, impressions, seed, out_dir / "synth")
        unimodal += [fp, vein]
        pairs.append((fp.name, vein.name, "synthetic fingerprint + vein",
                      "synthetic identity k has both a fingerprint and a vein"))
    if not no_real:
        root = real_root or _default_real()
        if not (root / "manifest.csv").is_file():
            if real_root is not None:
                raise DatasetError(f"no manifest.csv in {root}")
            notes.append(f"no real sets: {root}/manifest.csv not found")
        else:
            real = real_sets(root, vein_identities)
            unimodal += real
            vein_real = next((s for s in real if s.modality == "vein"), None)
            for s in real:
                if s.modality == "fingerprint" and vein_real is not None:
                    pairs.append((s.name, vein_real.name, f"{s.name} + FV-USM",
                                  "real sets paired across sets by identity index (not the same people)"))
    if not unimodal:
        raise DatasetError("nothing to measure: no synthetic identities and no real sets")
    for n in notes:
        click.echo(f"note: {n}", err=True)
    report = build_report(unimodal, pairs, out_dir, embedders, enhancement=not no_enhancement,
                          card_path=None if no_card else out_dir / "fusion_card.json")
    for line in report["summary_lines"]:
        click.echo(line)
    click.echo(f"fusion card: {report['card'] or 'not written (needs deep models for both modalities)'}")
    click.echo(f"report: {out_dir / 'report.md'}")
