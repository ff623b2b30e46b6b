"""Training data: every format the record reader knows (ours, sentence-transformers columns,
FlagEmbedding JSONL, a column mapping) from JSONL/Parquet/folders, mixed by ratio, the
instruction on the query side only, bad records named by file and line, hard negatives (as many
as num_negatives, or the missing_negatives rule), and a batch plan that trains every record."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from recipe.config import ConfigError, parse
from recipe.errors import InputError
from recipe.train.config import TrainConfig
from recipe.train.batch import ABSENT, make_batch
from recipe.schema import RecordError
from recipe.train.data import Example, complete_negatives, load_examples, plan_batches, plan_summary, shard
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
    assert (ex.positive, ex.negatives) == ("p1", ["neg1"])
    assert ex.where.endswith("a.jsonl:1")


def test_bad_records_are_named_with_file_and_line(tmp_path):
    bad = rec(2)
    del bad["query"]
    path = write(tmp_path / "bad.jsonl", [rec(1), bad])
    with pytest.raises(RecordError, match=r"bad\.jsonl:2: missing field 'query' or 'anchor'"):
        load_examples([str(path)], [], TEMPLATE, 0)
    (tmp_path / "broken.jsonl").write_text('{"task_group": \n')
    with pytest.raises(RecordError, match=r"broken\.jsonl:1: not valid JSON"):
        load_examples([str(tmp_path / "broken.jsonl")], [], TEMPLATE, 0)
    bare = {"query": "q", "positive": "p"}  # no instruction, and none in the recipe
    with pytest.raises(RecordError, match=r"bare\.jsonl:1: no instruction.*data_instructions"):
        load_examples([str(write(tmp_path / "bare.jsonl", [bare]))], [], TEMPLATE, 0)
    # a query side without an instruction (an encoder's recipe) needs none
    assert load_examples([str(tmp_path / "bare.jsonl")], [], "{query}", 0)[0].query == "q"


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
    with pytest.raises(RecordError, match="2 data sources"):
        load_examples([str(tmp_path / "run"), str(tmp_path / "b.parquet")], [1.0], TEMPLATE, 0)


def test_the_formats_the_field_uses_read_without_task_group_or_language(tmp_path):
    """Ours without the optional fields, sentence-transformers columns (negative, negative_1..n),
    FlagEmbedding JSONL (its prompt is the instruction), and a column mapping on a local dataset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources = {
        "ours.jsonl": [{"query": "q", "positive": "p", "negative": "n"}],
        "st.jsonl": [{"anchor": "q", "positive": "p", "negative": "n"}],
        "st_tuples.jsonl": [{"anchor": "q", "positive": "p", "negative_2": "n2", "negative_1": "n1"}],
        "flag.jsonl": [{"query": "q", "pos": ["p"], "neg": ["n1", "n2", "n3"], "prompt": "Own task"}],
    }
    paths = [str(write(tmp_path / name, rows)) for name, rows in sources.items()]
    (tmp_path / "qa").mkdir()
    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "p", "wrong": "n"}]),
                   tmp_path / "qa" / "train.parquet")
    paths.append(str(tmp_path / "qa"))
    out = load_examples(paths, [], TEMPLATE, 0, instructions="Find it",
                        columns=["query=question", "positive=answer", "negative=wrong"])
    got = {Path(ex.source).name: ex for ex in out}
    assert [ex.negatives for ex in out] == [["n"], ["n"], ["n1", "n2"], ["n1", "n2", "n3"], ["n"]]
    assert all(ex.positive == "p" and ex.task_group is None for ex in out)
    assert got["flag.jsonl"].query == "Instruct: Own task\nQuery: q"
    assert got["qa"].query == "Instruct: Find it\nQuery: q" and got["qa"].where.endswith("split train row 0")


def test_several_positives_are_one_record_each(tmp_path):
    row = {"query": "q", "pos": ["p1", "p2"], "neg": ["n"], "prompt": "Find it"}
    out = load_examples([str(write(tmp_path / "a.jsonl", [row]))], [], TEMPLATE, 0)
    assert [(ex.positive, ex.negatives) for ex in out] == [("p1", ["n"]), ("p2", ["n"])]


def test_a_flagembedding_record_brings_its_first_two_of_three_negatives(tmp_path):
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": [f"a{i}", f"b{i}", f"c{i}"], "prompt": "Find it"}
            for i in range(4)]
    examples = load_examples([str(write(tmp_path / "flag.jsonl", rows))], [], TEMPLATE, 0)
    assert complete_negatives(examples, 2, "error", 0) == 0
    batch = make_batch(examples, [0, 1, 2, 3], 0, 1, num_negatives=2)
    assert batch.columns[2:] == [[f"a{i}" for i in range(4)], [f"b{i}" for i in range(4)]]
    assert all(f"c{i}" not in col for col in batch.columns for i in range(4))
    assert len(batch.ids.candidates) == 3 * 4  # positives, first negatives, second negatives


def test_missing_negatives_error_random_or_in_batch(tmp_path):
    records = [rec(i, "short-short", None) for i in range(5)] + [rec(i, "sts") for i in range(5, 10)]
    path = str(write(tmp_path / "a.jsonl", records))
    examples = load_examples([path], [], TEMPLATE, 0)
    with pytest.raises(RecordError, match=r"a\.jsonl:1: 0 hard negative\(s\), num_negatives is 1 \(5 of 10 "
                                        r"records are short\); mine them first: python data/mine_negatives.py"):
        complete_negatives(examples, 1, "error", 0)
    assert complete_negatives(examples, 1, "in_batch", 0) == 5
    assert [len(ex.negatives) for ex in examples] == [0] * 5 + [1] * 5
    batch = make_batch(examples, list(range(10)), 0, 1, num_negatives=1)
    assert batch.columns[2][:5] == [""] * 5 and (batch.ids.candidates[10:15] == ABSENT).all()
    assert complete_negatives(examples, 1, "random", 0) == 5
    for ex in examples[:5]:  # a document of the same group, never its own positive
        assert ex.negatives[0] in {f"p{i}" for i in range(5)} and ex.negatives[0] != ex.positive
    assert complete_negatives(examples, 0, "error", 0) == 0  # pairs only: nothing is missing


def test_every_record_is_planned_though_half_share_one_positive(tmp_path):
    # the old duplicate deferral left most of these out; the loss masks them now
    records = [rec(i, "sts" if i < 20 else "bitext", positive="shared" if i % 2 else None) for i in range(40)]
    examples = load_examples([str(write(tmp_path / "a.jsonl", records))], [], TEMPLATE, 0)
    plan = plan_batches(examples, 8, seed=0, homogeneous="none")
    assert sorted(i for b in plan for i in b) == list(range(40))
    assert plan == plan_batches(examples, 8, seed=0, homogeneous="none")  # a function of the seed
    assert plan != plan_batches(examples, 8, seed=1, homogeneous="none")
    assert plan_summary(examples, plan)["used"] == 40
    # only the last partial batch is left out
    assert len({i for b in plan_batches(examples, 12, seed=0) for i in b}) == 36


def test_homogeneous_batches_by_source_from_build_mix(tmp_path):
    # build_mix writes each record's public set in `source`: batches group by it, not by the file
    records = [{**rec(i), "source": "nq" if i < 10 else "eli5"} for i in range(21)]
    examples = load_examples([str(write(tmp_path / "mix.jsonl", records))], [], TEMPLATE, 0)
    assert {ex.source for ex in examples} == {"nq", "eli5"}
    plan = plan_batches(examples, 4, seed=0, homogeneous="source")
    sources = [{examples[i].source for i in b} for b in plan]
    # 10 nq and 11 eli5: two full batches of each, then the 2 + 3 left-overs fill one mixed
    # batch; only 1 record (the last partial batch) is left out
    assert sorted(len(s) for s in sources) == [1] * 4 + [2]
    summary = plan_summary(examples, plan)
    assert summary["used"] == 20 and summary["per_source"]["nq"]["read"] == 10
    assert shard(list(range(8)), 1, 2) == [4, 5, 6, 7]
    with pytest.raises(RecordError, match="no full global batch"):
        plan_batches(examples, 1000, seed=0)


def test_unknown_key_is_an_error_that_names_it():
    with pytest.raises(ConfigError, match="unknown setting --lr.*--learning-rate"):  # transformers' name only
        parse(TrainConfig, ["--config", str(SMOKE), "--lr", "1e-4"])
    with pytest.raises(ConfigError, match="command line: --padding-side 'up': choose one of left, right"):
        parse(TrainConfig, ["--config", str(SMOKE), "--padding-side", "up"])
    with pytest.raises(ConfigError, match="append_eos"):
        parse(TrainConfig, ["--config", str(SMOKE), "--append-eos", "false"])
    cfg = parse(TrainConfig, ["--config", str(SMOKE), "--learning-rate", "1e-4", "--global-batch-size", "64"])
    assert (cfg.learning_rate, cfg.global_batch_size) == (1e-4, 64)  # "1e-4" is a number, though YAML 1.1 disagrees
    for bad, message in [(["--missing-negatives", "skip"], "--missing-negatives 'skip': choose one of error, in_batch"),
                         (["--num-negatives", "-1"], "'num_negatives' = -1 must be >= 0"),
                         (["--columns", "question"], "'columns': 'question' is not FIELD=COLUMN"),
                         (["--data", "a,b", "--data-instructions", "[x, y, z]"], "'data_instructions' has 3 values")]:
        with pytest.raises(InputError, match=re.escape(message)):
            parse(TrainConfig, ["--config", str(SMOKE), *bad])
    # an instruction with a comma stays one text; a YAML list gives one per source
    one = parse(TrainConfig, ["--config", str(SMOKE), "--data-instructions", "Given a question, find it"])
    assert one.data_instructions == "Given a question, find it"


def test_every_recipe_starts_with_its_command_and_loads():
    from tests.train_helpers import ROOT

    for path in sorted((ROOT / "recipe" / "configs").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and f"--config recipe/configs/{path.name}" in first, path
        if "train.py" in first:
            parse(TrainConfig, ["--config", str(path)])
    paper = parse(TrainConfig, ["--config", str(ROOT / "recipe/configs/e5_mistral_7b.yaml")])
    assert (paper.lora_r, paper.lora_alpha, paper.lora_dropout, paper.learning_rate, paper.warmup_steps) == (16, 32, 0.1, 1e-4, 100)
    assert (paper.weight_decay, paper.global_batch_size, paper.temperature, paper.max_length) == (0.1, 2048, 0.02, 512)
    assert paper.model == "mistralai/Mistral-7B-v0.1" and paper.num_train_epochs == 1 and paper.gradient_checkpointing
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


def test_the_saved_instruction_is_the_one_the_records_trained_with(tmp_path, capsys):
    """One rule: a record's own instruction, else data_instructions; the saved query prompt carries
    the instruction the run trained with, and a run with several is refused unless one is named."""
    from collections import Counter

    from recipe.train.export import saved_instruction

    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"query": "q", "positive": "p", "instruction": "Their own"}) + "\n")
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"query": "q2", "positive": "p2"}) + "\n")
    examples = load_examples([str(own), str(bare)], [], TEMPLATE, 0, instructions="Given a question, find it")
    assert [ex.instruction for ex in examples] == ["Their own", "Given a question, find it"]
    # the user's data_instructions that a source's records all override is named, not dropped silently
    assert f"{own}: 1 of 1 records carry their own instruction" in capsys.readouterr().err
    only = Counter({"Given a question, find it": 3})
    assert saved_instruction(TEMPLATE, None, only) == "Given a question, find it"
    assert saved_instruction(TEMPLATE, "Given a web search query", only) == "Given a question, find it"
    assert "the instruction every record trained with" in capsys.readouterr().err
    several = Counter(ex.instruction for ex in examples)
    with pytest.raises(ConfigError, match="2 different instructions.*--export-query-instruction"):
        saved_instruction(TEMPLATE, None, several)
    assert saved_instruction(TEMPLATE, "Named", several) == "Named"
    assert saved_instruction("{query}", None, several) == ""


def test_max_steps_overrides_epochs():
    """As in transformers: max_steps > 0 trains exactly that many steps, over as many passes as they
    take; the first passes are those of the epochs plan."""
    from recipe.train.data import plan_steps

    examples = [Example(f"q{i}", f"p{i}", [], None, "s", str(i)) for i in range(40)]
    one_epoch = plan_batches(examples, 8, 0, 1)
    assert len(one_epoch) == 5
    plan = plan_steps(examples, 8, 0, epochs=1, max_steps=12)
    assert len(plan) == 12 and plan[:5] == one_epoch
    assert len(plan_steps(examples, 8, 0, epochs=3, max_steps=2)) == 2
    assert len(plan_steps(examples, 8, 0, epochs=2)) == 10


def test_data_instructions_under_a_template_without_instruction_is_refused():
    minilm = str(SMOKE.parent / "minilm.yaml")
    with pytest.raises(ConfigError, match=r"'data_instructions' is set but query_template '\{query\}' has no"):
        parse(TrainConfig, ["--config", minilm, "--data-instructions", "Given a question, retrieve its answer"])
    assert parse(TrainConfig, ["--config", minilm]).data_instructions == ""


def test_the_default_launcher_config_takes_the_number_of_gpus_from_the_launch():
    """accelerate_config.yaml names no number of processes: a launch without --num_processes is
    refused by accelerate, not run as 8 processes on a machine with fewer GPUs."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    from tests.train_helpers import ROOT

    parser = launch_command_parser()
    config = ["--config_file", str(ROOT / "accelerate_config.yaml")]
    with pytest.raises(ValueError, match="pass in `--num_processes`"):
        _validate_launch_command(parser.parse_args([*config, "train.py"]))
    args, _, _ = _validate_launch_command(parser.parse_args([*config, "--num_processes", "3", "train.py"]))
    assert args.num_processes == 3 and args.multi_gpu
