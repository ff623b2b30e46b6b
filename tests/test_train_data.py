"""Training data: the synthesis format from JSONL/Parquet/directories, mixed by ratio, the
instruction on the query side only, bad records named by file and line, and the batch plan."""

from __future__ import annotations

import json

import pytest

from recipe.config import ConfigError, parse
from recipe.train.config import TrainConfig, validate
from recipe.train.data import DataError, load_examples, plan_batches, shard
from tests.train_helpers import SAMPLE, SMOKE

TEMPLATE = "Instruct: {instruction}\nQuery: {query}"


def write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def rec(i, group="short-long", negative="neg", positive=None):
    return {"task_group": group, "instruction": "Find it", "query": f"q{i}",
            "positive": positive or f"p{i}", "negative": negative and f"{negative}{i}", "language": "English"}


def test_sample_covers_every_task_group_and_several_languages():
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 200
    assert {r["task_group"] for r in records} == {"short-long", "long-short", "short-short", "long-long", "sts", "bitext"}
    assert len({r["language"] for r in records}) >= 5
    assert {r["instruction"] for r in records if r["task_group"] == "bitext"} == {"Retrieve parallel sentences."}


def test_instruction_goes_on_the_query_side_only(tmp_path):
    ex = load_examples([str(write(tmp_path / "a.jsonl", [rec(1)]))], [], TEMPLATE, 0)[0]
    assert ex.query == "Instruct: Find it\nQuery: q1"
    assert (ex.positive, ex.negative) == ("p1", "neg1")
    assert ex.where.endswith("a.jsonl:1")


def test_missing_field_is_named_with_file_and_line(tmp_path):
    bad = rec(2)
    del bad["language"]
    path = write(tmp_path / "bad.jsonl", [rec(1), bad])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: missing field 'language'"):
        load_examples([str(path)], [], TEMPLATE, 0)
    (tmp_path / "broken.jsonl").write_text('{"task_group": \n')
    with pytest.raises(DataError, match=r"broken\.jsonl:1: not valid JSON"):
        load_examples([str(tmp_path / "broken.jsonl")], [], TEMPLATE, 0)


def test_directory_and_parquet_sources_and_ratios(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "run").mkdir()
    write(tmp_path / "run" / "examples.jsonl", [rec(i) for i in range(10)])
    pq.write_table(pa.Table.from_pylist([rec(100 + i) for i in range(10)]), tmp_path / "b.parquet")
    out = load_examples([str(tmp_path / "run"), str(tmp_path / "b.parquet")], [0.5, 2.0], TEMPLATE, 0)
    from_dir = [e for e in out if e.source.endswith("run")]
    from_parquet = [e for e in out if e.source.endswith("parquet")]
    assert len(from_dir) == 5 and len(from_parquet) == 20
    assert from_parquet[0].where.endswith("b.parquet row 0")
    with pytest.raises(DataError, match="2 data sources"):
        load_examples([str(tmp_path / "run"), str(tmp_path / "b.parquet")], [1.0], TEMPLATE, 0)


def test_null_negatives_get_a_document_of_the_same_group(tmp_path):
    records = [rec(i, "short-short", None) for i in range(5)] + [rec(i, "sts") for i in range(5, 10)]
    out = load_examples([str(write(tmp_path / "a.jsonl", records))], [], TEMPLATE, 0)
    for ex in out[:5]:
        assert ex.negative in {f"p{i}" for i in range(5)} and ex.negative != ex.positive


def test_plan_dedup_homogeneous_and_shards(tmp_path):
    # every record shares its positive with one twin: no batch may hold both twins
    records = [rec(i, "sts" if i < 20 else "bitext", positive=f"p{i // 2}") for i in range(40)]
    examples = load_examples([str(write(tmp_path / "a.jsonl", records))], [], TEMPLATE, 0)
    plan = plan_batches(examples, 8, seed=0, homogeneous="none", dedup=True)
    for batch in plan:
        positives = [examples[i].positive for i in batch]
        assert len(set(positives)) == len(positives)
    assert plan == plan_batches(examples, 8, seed=0, homogeneous="none", dedup=True)  # a function of the seed
    homog = plan_batches(examples, 4, seed=0, homogeneous="task_group", dedup=True)
    assert all(len({examples[i].task_group for i in b}) == 1 for b in homog)
    assert shard(list(range(8)), 1, 2) == [4, 5, 6, 7]
    with pytest.raises(DataError, match="no full global batch"):
        plan_batches(examples, 1000, seed=0)


def test_unknown_key_is_an_error_that_names_it():
    with pytest.raises(ConfigError, match="unknown setting --learning-rate"):
        parse(TrainConfig, ["--config", str(SMOKE), "--learning_rate", "1e-4"])
    with pytest.raises(ConfigError, match="'padding_side' = 'up': choose one of left, right"):
        validate(parse(TrainConfig, ["--config", str(SMOKE), "--padding-side", "up"]))
    with pytest.raises(ConfigError, match="append_eos"):
        validate(parse(TrainConfig, ["--config", str(SMOKE), "--append-eos", "false"]))
    cfg = parse(TrainConfig, ["--config", str(SMOKE), "--lr", "1e-4", "--global-batch-size", "64"])
    assert (cfg.lr, cfg.global_batch_size) == (1e-4, 64)  # "1e-4" is a number, though YAML 1.1 disagrees


def test_every_recipe_starts_with_its_command_and_loads():
    from tests.train_helpers import ROOT

    for path in sorted((ROOT / "recipe" / "configs").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and f"--config recipe/configs/{path.name}" in first, path
        if "train.py" in first:
            validate(parse(TrainConfig, ["--config", str(path)]))
    paper = parse(TrainConfig, ["--config", str(ROOT / "recipe/configs/e5_mistral_7b.yaml")])
    assert (paper.lora_r, paper.lora_alpha, paper.lora_dropout, paper.lr, paper.warmup_steps) == (16, 32, 0.1, 1e-4, 100)
    assert (paper.weight_decay, paper.global_batch_size, paper.temperature, paper.max_length) == (0.1, 2048, 0.02, 512)
    assert paper.model == "mistralai/Mistral-7B-v0.1" and paper.epochs == 1 and paper.gradient_checkpointing
    assert set(paper.lora_target_modules) == {f"{m}_proj" for m in ("q", "k", "v", "o", "gate", "up", "down")}


def test_launcher_configs_load_in_accelerate_and_name_their_command():
    from accelerate.commands.config.config_args import load_config_from_file

    from tests.train_helpers import ROOT

    paths = [ROOT / "accelerate_config.yaml", *sorted((ROOT / "recipe/configs/accelerate").glob("*.yaml"))]
    for path in paths:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# accelerate launch --config_file ") and path.name in first, path
        config = load_config_from_file(str(path))
        assert config.mixed_precision == "bf16" and config.distributed_type in ("MULTI_GPU", "NO"), path
