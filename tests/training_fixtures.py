"""Small, real fixtures for the training tests: a tiny synthetic vein set and a tiny trained + exported model.

Built once per test session (memoized under pytest's session temp folder) because TensorFlow conversion costs
tens of seconds on a 2-core CPU. Vein ROI crops are used because the generator renders them in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["tiny_data", "tiny_prepared", "tiny_run", "tiny_export"]

_MEMO: dict[str, object] = {}


def _base(factory) -> Path:
    return Path(factory.getbasetemp()) / "training-fixtures"


def make_tiny_data(root: Path, identities: int = 10, impressions: int = 3, seed: int = 3) -> Path:
    from training.synth import generate_dataset

    if not (root / "manifest.csv").is_file():
        generate_dataset("vein", identities, impressions, "roi", seed, root, force=True, workers=1, progress=False)
    return root


@pytest.fixture
def tiny_data(tmp_path_factory) -> Path:
    """10 synthetic vein identities x 3 impressions (manifest layout)."""
    key = "data"
    if key not in _MEMO:
        _MEMO[key] = make_tiny_data(_base(tmp_path_factory) / "data")
    return _MEMO[key]


@pytest.fixture
def tiny_prepared(tiny_data, tmp_path_factory):
    from training.prepared import prepare

    if "prepared" not in _MEMO:
        _MEMO["prepared"] = prepare(tiny_data, "vein", cache_dir=_base(tmp_path_factory) / "cache", workers=1,
                                    min_impressions=2, progress=False)
    return _MEMO["prepared"]


@pytest.fixture
def tiny_run(tiny_prepared, tmp_path_factory):
    """A tiny-preset training run (FitResult) on the tiny set."""
    from training.fit import fit
    from training.train_config import build_config

    if "run" not in _MEMO:
        _MEMO["run"] = fit(build_config(preset="tiny"), tiny_prepared, _base(tmp_path_factory) / "run",
                           progress=False)
    return _MEMO["run"]


@pytest.fixture
def tiny_export(tiny_run, tiny_data, tmp_path_factory):
    """The tiny run exported (int8 + float32 + ONNX + card); the match check is relaxed for an untrained net."""
    from training.export import export_model

    if "export" not in _MEMO:
        _MEMO["export"] = export_model(
            tiny_run.best_model, tiny_data, _base(tmp_path_factory) / "export", "vein", "vein-tiny",
            trained_on="tests", representative=20, max_eer_delta=1.0, min_cosine=0.9,
            cache_dir=_base(tmp_path_factory) / "cache", progress=False,
        )
    return _MEMO["export"]
