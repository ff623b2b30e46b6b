"""One command-line surface: every command parses through recipe.config with --config and --help,
spells flags in kebab-case only and uses one name per concept."""

import re
import tomllib
from importlib import import_module

import pytest

from recipe.config import ConfigError, parse
from tests.conftest import ROOT, load_script

SCRIPTS = {"synthesize": "data/synthesize.py", "publish": "data/publish.py", "build_mix": "data/build_mix.py",
           "mine_negatives": "data/mine_negatives.py", "filter_pairs": "data/filter_pairs.py",
           "decontaminate": "data/decontaminate.py", "train": "train.py",
           "eval": "eval.py", "local_teacher": "data/local_teacher.py", "search": "search.py"}
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
    "local_teacher": ["--model", "--port", "--threads"],
    "search": ["--model", "--output", "--overwrite", "--max-length", "--top-k", "--batch-size", "--query-prompt",
               "--corpus-prompt", "--cache-dir"],
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


@pytest.mark.parametrize("cls_path, flag, meant", [
    ("recipe.synth.settings:SynthConfig", "--out", "--output-dir"),
    ("recipe.train.config:TrainConfig", "--torch-dtype", "--dtype"),
    ("recipe.train.config:TrainConfig", "--output_dir", "--output-dir"),
    ("recipe.train.config:TrainConfig", "--max_length", "--max-length"),
    ("recipe.commands.mine_negatives:MineConfig", "--config-name", None),
])
def test_a_snake_case_or_old_flag_is_an_unknown_setting(cls_path, flag, meant, capsys):
    module, name = cls_path.split(":")
    cls = getattr(import_module(module), name)
    with pytest.raises(ConfigError) as e:
        parse(cls, [flag, "x"])
    hint = f" (did you mean {meant}" if meant else ";"
    assert str(e.value).startswith(f"command line: unknown setting {flag}{hint}")
    assert str(e.value).endswith("; --help lists them")
    assert capsys.readouterr().err == ""


def test_console_scripts_point_at_the_same_commands():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in SCRIPTS:
        module, func = scripts[f"e5-{name.replace('_', '-')}"].split(":")
        assert module == f"recipe.commands.{name}"
        assert getattr(import_module(module), func) is load_script(SCRIPTS[name]).main


HEAVY = ("torch", "transformers", "sentence_transformers", "mteb", "datasets", "peft", "accelerate")
_RUN_SCRIPTS = """
import contextlib, io, json, runpy, sys
heavy, codes = {}, {}
for line in sys.argv[1:]:
    sys.argv = json.loads(line)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as e:
            codes[line] = e.code
    heavy[line] = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"heavy": heavy, "codes": codes}))
""" % (HEAVY,)


def test_help_and_a_refused_run_import_no_heavy_library(tmp_path):
    """--help, and a run refused before its work starts, answer without importing torch, mteb
    and the rest (20 s on a busy machine before the answer, for nothing)."""
    import json
    import subprocess
    import sys

    held = tmp_path / "held"
    held.mkdir()
    (held / "train_log.jsonl").write_text('{"step": 1}\n')  # a run already there: refused without --resume
    runs = [[script, "--help"] for script in SCRIPTS.values()]
    runs.append(["train.py", "--config", "recipe/configs/smoke.yaml", "--output-dir", str(held)])
    done = subprocess.run([sys.executable, "-c", _RUN_SCRIPTS, *map(json.dumps, runs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(report["codes"].values()) == [0] * len(SCRIPTS) + [2], report["codes"]
    for run, modules in report["heavy"].items():
        assert not modules, f"{run} imported {modules[:5]}"


def test_known_library_noise_is_dropped_and_other_warnings_shown():
    """The filter matches the libraries' exact messages, raised here by the real library code,
    and leaves any other warning alone."""
    import logging
    import warnings

    from transformers import BertConfig, BertModel

    from recipe import cli

    model = BertModel(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
                                 vocab_size=10))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        cli.quiet_known_noise()
        model.is_gradient_checkpointing  # noqa: B018 - the property warns when read
        warnings.warn("something else went wrong", UserWarning)
    assert [str(w.message) for w in shown] == ["something else went wrong"]
    record = logging.LogRecord("mteb.abstasks.abstask", logging.WARNING, "", 0,
                               "The task 'STSBenchmark' is superseded by 'STSBenchmark.v2'. We recommend ...", None, None)
    assert not logging.getLogger("mteb.abstasks.abstask").filter(record)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_keeps_its_columns(name, capsys):
    """Each setting's help starts in one column, the one `--config FILE`'s help starts in: a
    default with a line break shows it as \\n, a wide default or flag puts the help on the next
    line, in that column, never pushed out of line."""
    assert load_script(SCRIPTS[name]).main(["--help"]) == 0
    text = capsys.readouterr().out
    column = next(line for line in text.splitlines() if line.startswith("  --config FILE")).index("read settings")
    block = text[text.index("Settings ("):].split("\n")[1:]
    block = block[:block.index("")]  # the settings, up to the common flags
    for i, line in enumerate(block):
        if line.startswith("  --"):
            if len(line) > column and line[column - 1] == " " and line[column] != " ":
                continue  # flag, default and help on one line
            # flag and default only: the help must follow on the next line, in the column
            assert block[i + 1].startswith(" " * column) and block[i + 1][column] != " ", (line, block[i + 1])
        else:
            assert line.startswith(" " * column) and block[i - 1].startswith("  --"), \
                f"a setting broken over lines: {block[i - 1]!r} / {line!r}"
