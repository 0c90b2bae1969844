"""The shipped models are what ``biolock train ship`` describes: a recipe change without a re-ship fails here."""

import json
from pathlib import Path

import pytest

from device.preprocess import PREPROCESSING_IDS
from training.recipes.ship import SHIP, trained_on

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("modality", sorted(SHIP))
def test_shipped_card_matches_the_recipe(modality):
    card_path = MODELS / f"{modality}.json"
    if not card_path.is_file():
        pytest.skip(f"no shipped {modality} model")
    card = json.loads(card_path.read_text())
    spec = SHIP[modality]
    assert card["modality"] == modality
    assert (card["name"], card["version"]) == (spec["name"], spec["version"])
    assert card["trained_on"] == trained_on(modality)  # profiles, fingers, impressions, seed
    assert card["preprocessing"] == spec.get("preprocessing", PREPROCESSING_IDS[modality])
    assert (MODELS / card["file"]).stat().st_size <= 500 * 1024  # the size limit for int8 models
