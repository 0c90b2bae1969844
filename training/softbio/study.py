"""The study end to end: labels -> checks -> images -> features -> splits -> models -> evaluations -> report.

Order matters for the user: every check that can fail from the labels alone (one class, too few subjects for the
splits, unknown model names) runs before a single image is decoded or a model is built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from device.errors import DatasetError
from training.softbio import dataset as ds
from training.softbio.models import Budget, parse_models, run_model
from training.softbio.splits import SPLIT_KINDS, check_splittable, make_split, shared_keys


@dataclass(frozen=True)
class StudyRequest:
    data: Path
    out: Path
    splits: tuple[str, ...] = SPLIT_KINDS
    models: tuple[str, ...] = ("svm", "cnn", "resnet")
    size: int = ds.DEFAULT_SIZE
    dpi: float = ds.DEFAULT_DPI
    max_subjects: int | None = None
    permute_labels: bool = False
    budget: Budget = Budget()
    command: str = ""
    progress: bool = True


def parse_splits(text: str) -> tuple[str, ...]:
    """``subject``, ``image`` or ``both``."""
    if text == "both":
        return SPLIT_KINDS
    if text in SPLIT_KINDS:
        return (text,)
    raise DatasetError(f"unknown split {text!r}; choose subject, image or both")


def load_checked(req: StudyRequest) -> ds.SoftbioSet:
    """Labels, the checks that need only labels, then pixels (and the checks again, if files were unreadable)."""
    if not 16 <= req.size <= 512:
        raise DatasetError(f"image size must be between 16 and 512 px, got {req.size}")
    samples, skipped, layout = ds.label_samples(req.data, req.dpi)
    samples = ds.limit_subjects(samples, req.max_subjects, req.budget.seed)
    if req.permute_labels:
        samples = ds.permute_sex(samples, req.budget.seed)
    ds.check_classes(s.sex for s in samples)
    subjects = np.array([s.subject for s in samples])
    y = np.array([ds.CLASSES.index(s.sex) for s in samples])
    check_splittable(subjects, y, req.splits)
    data = ds.decode(samples, req.size, skipped, layout, progress=req.progress)
    ds.check_classes(ds.CLASSES[k] for k in data.y)
    check_splittable(data.subjects, data.y, req.splits)
    return data


def run_study(req: StudyRequest, log=print) -> tuple[dict, dict[str, Path]]:
    """Load ``req.data``, run every model on every split, write the report; returns (study dict, report paths)."""
    from training.softbio.report import write_report

    parse_models(",".join(req.models))  # unknown names fail before any image is read
    data = load_checked(req)
    log(f"{len(data)} images, {len(set(data.subjects))} subjects, {len(data.skipped)} skipped")
    study = study_on(data, req, log=log)
    return study, write_report(study, req.out)


def study_on(data: ds.SoftbioSet, req: StudyRequest, features: np.ndarray | None = None, log=print) -> dict:
    """Every model on every split of an already loaded set (``features`` computed here when None and needed)."""
    from training.softbio.metrics import evaluate_run

    models = parse_models(",".join(req.models))
    if "svm" in models and features is None:
        from training.softbio.features import extract_features

        features = extract_features(data.images, data.dpi, progress=req.progress)
    evaluations, split_counts, shared = [], {}, {}
    for kind in req.splits:
        split = make_split(kind, data.subjects, data.y, req.budget.seed)
        split_counts[kind] = split.counts(data.y, data.subjects)
        shared[kind] = {"subjects": len(shared_keys(split, data.subjects)),
                        "source_prints": len(shared_keys(split, data.sources))}
        for name in models:
            log(f"training {name} on the {kind} split")
            run = run_model(name, data.images, features, data.y, split, req.budget)
            ev = evaluate_run(run, data, req.budget.seed)
            log(f"  {name}/{kind}: accuracy {ev['accuracy']:.3f}, balanced {ev['balanced_accuracy']:.3f}, "
                f"AUC {ev['auc']:.3f} ({ev['test_images']} test images, {ev['test_subjects']} subjects)")
            evaluations.append(ev)
    study = {"command": req.command, "data": data.summary(), "size": int(data.images.shape[1]), "seed": req.budget.seed,
             "permuted_labels": req.permute_labels, "budget": asdict(req.budget), "splits": split_counts,
             "shared_between_parts": shared,
             "evaluations": evaluations, "skipped": [[str(p), r] for p, r in data.skipped]}
    if features is not None:
        from training.softbio.features import FEATURE_NAMES

        study["feature_means"] = {n: {c: float(features[data.y == k, j].mean()) for k, c in enumerate(ds.CLASSES)}
                                  for j, n in enumerate(FEATURE_NAMES)}
    return study
