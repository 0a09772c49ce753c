"""Typed params sections: every stage's dataclass is built from the real params.yaml, and bad keys are named."""
import pytest
import yaml

from podsearch.config import ConfigError, from_section
from podsearch.data import PrepareConfig
from podsearch.download import DataConfig
from podsearch.evaluation import EvaluateConfig
from podsearch.search.build import IndexConfig
from podsearch.search.engine import SearchSettings
from podsearch.split import SplitConfig
from podsearch.training import TrainConfig
from tests.conftest import ROOT

SECTIONS = {"data": DataConfig, "prepare": PrepareConfig, "split": SplitConfig, "train": TrainConfig,
            "evaluate": EvaluateConfig, "index": IndexConfig, "search": SearchSettings}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_section_of_params_yaml_fits_its_dataclass(section):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())[section]
    config = SECTIONS[section].from_params(params)
    for key, value in params.items():  # nothing dropped, nothing renamed
        assert getattr(config, key) == value or (value == [] and getattr(config, key) == [])


def test_yaml_strings_that_are_numbers_are_cast():
    # YAML 1.1 reads 5e-5 (as `dvc exp run -S` writes it) as a string
    config = TrainConfig.from_params({"learning_rate": "5e-5", "batch_size": "32", "max_train_pairs": None})
    assert config.learning_rate == 5e-5 and config.batch_size == 32 and config.max_train_pairs is None


@pytest.mark.parametrize("params, message", [
    ({"learnig_rate": 1e-5}, "params.yaml train: unknown key(s) learnig_rate"),
    ({"batch_size": "many"}, "params.yaml train.batch_size: expected int, got 'many'"),
    ({"batch_size": 3.5}, "params.yaml train.batch_size: expected a whole number, got 3.5"),
    ({"epochs": None}, "params.yaml train.epochs: expected int, got null"),
    ({"epochs": True}, "params.yaml train.epochs: expected int, got True"),
])
def test_bad_keys_are_named(params, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_params(params)
    assert str(error.value).startswith(message)


def test_lists_and_missing_required_fields():
    assert PrepareConfig.from_params({"languages": ["English"]}).languages == ["English"]
    with pytest.raises(ConfigError, match=r"params.yaml prepare.languages: expected a list, got 'English'"):
        PrepareConfig.from_params({"languages": "English"})

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Needs:
        depth: int

    with pytest.raises(ConfigError, match=r"params.yaml x.depth: missing"):
        from_section(Needs, {}, "x")


def test_search_settings_ignore_other_keys():
    assert SearchSettings.from_params({"max_k": "20", "unrelated": 1}).max_k == 20
