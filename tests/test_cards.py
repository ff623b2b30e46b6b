"""The cards' Markdown templates (recipe/templates/) ship in the package, are read through
importlib.resources (as from an installed wheel, not from the checkout's folder), and a value a
template reads that the card was not given is refused instead of rendered as nothing. What the
cards say is checked where they are made: tests/test_data_publish.py (dataset card),
tests/test_train_run.py and tests/test_hub.py (model card)."""

import fnmatch
import tomllib

import pytest
from huggingface_hub import DatasetCard, DatasetCardData, ModelCard

from recipe import cards
from recipe.train.config import TrainConfig
from recipe.train.export import model_card
from tests.conftest import ROOT

TEMPLATES = sorted((ROOT / "recipe" / cards.TEMPLATES).glob("*.md"))


def test_every_template_is_package_data_and_read_as_a_resource():
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["recipe"]
    assert {t.name for t in TEMPLATES} == {"dataset_card.md", "model_card.md"}
    for path in TEMPLATES:
        inside = path.relative_to(ROOT / "recipe").as_posix()
        assert any(fnmatch.fnmatch(inside, pattern) for pattern in shipped), f"{inside} is not in the package data"
        assert cards.template(path.name) == path.read_text(encoding="utf-8")


def test_a_value_the_template_reads_and_the_card_lacks_is_refused():
    with pytest.raises(ValueError, match=r"dataset_card\.md reads .*n_examples"):
        cards.render(DatasetCard, "dataset_card.md", DatasetCardData(license="mit", pretty_name="x"), paper="p")


def test_the_model_card_yaml_is_what_the_hub_reads():
    text = model_card(TrainConfig(model="intfloat/e5-mistral-7b-instruct", output_dir="out/run",
                                  matryoshka_dims=[64, 256]), {"records": 3}, "Q: ")
    data = ModelCard(text).data
    assert (data.library_name, data.base_model) == ("sentence-transformers", "intfloat/e5-mistral-7b-instruct")
    assert data.tags == ["sentence-transformers", "feature-extraction", "e5-recipe"]
    assert text.startswith("---\n") and "\n---\n# run\n" in text
    assert "truncate_dim=64)` keeps the first 64." in text and "at 256, 64 dimensions" in text
