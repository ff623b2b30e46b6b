"""One command-line surface: every command parses through recipe.config with --config and --help,
spells flags in kebab-case, uses one name per concept, and still takes the old names with a note."""

import re
import tomllib
from importlib import import_module

import pytest

from recipe.config import parse
from tests.conftest import ROOT, load_script

SCRIPTS = {"synthesize": "data/synthesize.py", "publish": "data/publish.py", "build_mix": "data/build_mix.py",
           "mine_negatives": "data/mine_negatives.py", "filter_pairs": "data/filter_pairs.py",
           "decontaminate": "data/decontaminate.py", "train": "train.py",
           "eval": "eval.py"}
# the concept each command must name this way (and the old names that must be gone from --help)
CONCEPTS = {
    "synthesize": ["--output-dir"],
    "publish": ["--input", "--output-dir", "--dry-run"],
    "build_mix": ["--output"],
    "mine_negatives": ["--input", "--output", "--max-length", "--split", "--dataset-config"],
    "filter_pairs": ["--input", "--output", "--overwrite", "--max-length", "--split", "--dataset-config"],
    "decontaminate": ["--input", "--output", "--overwrite", "--split", "--dataset-config", "--data-dir", "--tasks"],
    "train": ["--output-dir", "--max-length", "--dtype", "--split"],
    "eval": ["--output-dir", "--max-length", "--dtype"],
}
OLD = ["--out", "--torch-dtype", "--data-split", "--config-name", "--max-seq-length", "--max-tokens-length"]


def _settings(help_text: str) -> set[str]:
    return set(re.findall(r"^  (--[a-z0-9-]+)", help_text, flags=re.M))


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_is_kebab_case_with_one_name_per_concept(name, capsys):
    assert load_script(SCRIPTS[name]).main(["--help"]) == 0
    text = capsys.readouterr().out
    flags = _settings(text)
    assert {"--config", "--debug", "--help"} <= flags
    assert not re.search(r"^  --[a-z0-9-]*_", text, flags=re.M), "a snake_case flag in --help"
    for concept in CONCEPTS[name]:
        assert concept in flags, f"{name} --help lacks {concept}"
    assert not flags & set(OLD)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_command_reads_config_file(name, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("not_a_setting_of_any_command: 1\n")
    code = load_script(SCRIPTS[name]).main(["--config", str(recipe)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"error: {recipe}: unknown config key 'not_a_setting_of_any_command'"


def test_same_concept_has_the_same_field_name_in_every_dataclass():
    from recipe.commands.mine_negatives import MineConfig
    from recipe.commands.publish import PublishConfig
    from recipe.data.mix import MixConfig
    from recipe.eval.settings import EvalConfig
    from recipe.synth.settings import SynthConfig
    from recipe.train.config import TrainConfig

    names = {cls.__name__: {f for f in cls.__dataclass_fields__} for cls in
             (MineConfig, PublishConfig, MixConfig, EvalConfig, SynthConfig, TrainConfig)}
    assert {"output_dir"} <= names["SynthConfig"] & names["TrainConfig"] & names["EvalConfig"] & names["PublishConfig"]
    assert {"output"} <= names["MixConfig"] & names["MineConfig"]
    assert {"max_length"} <= names["MineConfig"] & names["TrainConfig"] & names["EvalConfig"]
    assert {"dtype"} <= names["TrainConfig"] & names["EvalConfig"]
    assert {"split"} <= names["TrainConfig"] & names["MineConfig"]


@pytest.mark.parametrize("cls_path, old, new, value", [
    ("recipe.synth.settings:SynthConfig", "--out", "output_dir", "x"),
    ("recipe.train.config:TrainConfig", "--torch_dtype", "dtype", "float32"),
    ("recipe.train.config:TrainConfig", "--data-split", "split", "dev"),
    ("recipe.train.config:TrainConfig", "--output_dir", "output_dir", "y"),
    ("recipe.commands.mine_negatives:MineConfig", "--config-name", "dataset_config", "all"),
    ("recipe.commands.mine_negatives:MineConfig", "--max-seq-length", "max_length", 64),
])
def test_old_names_still_work_with_a_one_line_note(cls_path, old, new, value, capsys):
    module, name = cls_path.split(":")
    cls = getattr(import_module(module), name)
    cfg = parse(cls, [old, str(value)])
    assert getattr(cfg, new) == value
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("note: ") for line in err) and len(err) <= 2
    assert new.replace("_", "-") in err[-1] or "spelled" in err[0]


def test_old_yaml_key_works_with_a_note(tmp_path, capsys):
    from recipe.train.config import TrainConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text("torch_dtype: float16\n")
    assert parse(TrainConfig, ["--config", str(recipe)]).dtype == "float16"
    assert capsys.readouterr().err.strip() == (f"note: {recipe}: 'torch_dtype' is renamed 'dtype'; "
                                               "the old name is accepted until the next release")


def test_publish_positional_input_and_dry_run_folder_are_accepted(tmp_path, capsys):
    from recipe.commands.publish import PublishConfig, old_spellings

    cfg = parse(PublishConfig, old_spellings(["out/synth", "--repo-id", "me/x", "--dry-run", "out/hub"]))
    assert (cfg.input, cfg.dry_run, cfg.output_dir) == ("out/synth", True, "out/hub")
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_console_scripts_point_at_the_same_commands():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in SCRIPTS:
        module, func = scripts[f"e5-{name.replace('_', '-')}"].split(":")
        assert module == f"recipe.commands.{name}"
        assert getattr(import_module(module), func) is load_script(SCRIPTS[name]).main
