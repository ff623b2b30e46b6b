"""Two training keys beyond the paper, end to end through train.py on the smoke recipe:
`merge_checkpoints` (final/ is the average, or the SLERP, of the last checkpoints, LoRA or full
weights) and `matryoshka_dims` (final/ loads cut with `truncate_dim` and eval.py scores it cut)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from recipe.config import ConfigError, parse
from recipe.train.config import TrainConfig
from recipe.train.merge import combine
from tests.train_helpers import ROOT, SAMPLE, SMOKE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
LORA_SCALE = 32 / 16  # the smoke recipe's lora_alpha / lora_r


def train(out: Path, *args: str) -> subprocess.CompletedProcess:
    import os

    done = subprocess.run([sys.executable, "train.py", "--config", str(SMOKE), "--data", str(SAMPLE),
                           "--output-dir", str(out), "--max-steps", "4", "--save-steps", "2", *args],
                          cwd=ROOT, env={**os.environ, **ENV}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def checkpoint_weights(out: Path) -> list[dict[str, torch.Tensor]]:
    steps = sorted((out / "checkpoints").glob("step-*"))
    assert [p.name for p in steps] == ["step-000002", "step-000004"]  # the end of training is the newest
    return [torch.load(p / "state.pt", weights_only=False)["weights"] for p in steps]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """LoRA, both keys on: final/ merges the checkpoints of steps 2 and 4, trained at widths 64 and 16."""
    out = tmp_path_factory.mktemp("lora") / "run"
    done = train(out, "--merge-checkpoints", "2", "--matryoshka-dims", "64,16")
    assert "final/ is the average of checkpoints step-000002, step-000004" in done.stdout + done.stderr
    return out


def test_merging_two_lora_checkpoints_gives_the_average_of_their_models(lora_run):
    """By hand: each adapted weight is base + the mean of the two deltas B A x alpha / r; the
    other weights stay the base model's."""
    first, second = checkpoint_weights(lora_run)
    base = load_file(lora_run / "base" / "tiny-mistral" / "model.safetensors")
    final = load_file(lora_run / "final" / "model.safetensors")
    prefix, adapted = "0.model.base_model.model.", set()
    for name in first:
        if ".lora_A." not in name:
            continue
        module = name.removeprefix(prefix).removesuffix(".lora_A.default.weight")
        b_name = name.replace("lora_A", "lora_B")
        deltas = [LORA_SCALE * w[b_name] @ w[name] for w in (first, second)]
        assert (deltas[0] - deltas[1]).abs().max() > 1e-4  # the two checkpoints differ
        expected = base[f"{module}.weight"] + (deltas[0] + deltas[1]) / 2
        assert torch.allclose(final[f"{module}.weight"], expected, atol=1e-6), module
        assert not torch.allclose(final[f"{module}.weight"], base[f"{module}.weight"] + deltas[1], atol=1e-5)
        adapted.add(f"{module}.weight")
    assert len(adapted) == 2 * 7  # 2 layers x q, k, v, o, gate, up, down
    for name, weight in final.items():
        if name not in adapted:
            assert torch.equal(weight, base[name]), name


def test_merging_two_full_checkpoints_gives_their_average(tmp_path):
    out = tmp_path / "run"
    train(out, "--lora", "false", "--merge-checkpoints", "2", "--learning-rate", "1e-3")
    first, second = checkpoint_weights(out)
    final = load_file(out / "final" / "model.safetensors")
    assert len(first) == len(final)
    for name, weight in first.items():
        saved = name.removeprefix("0.model.")
        assert torch.allclose(final[saved], (weight + second[name]) / 2, atol=1e-6), saved
    moved = max((first[n] - second[n]).abs().max().item() for n in first)
    assert moved > 1e-4


def test_spherical_merge_is_slerp_by_hand():
    # orthogonal, norms 1 and 2: halfway along the arc, sin(45 deg) / sin(90 deg) of each
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    half = math.sqrt(0.5)
    assert torch.allclose(combine([a, b], "spherical"), torch.tensor([half, 2 * half]), atol=1e-6)
    assert torch.allclose(combine([a, b], "average"), torch.tensor([0.5, 1.0]))
    # three at 0, 90 and 180 degrees with unit norms: 1/2 of the way to the second (45 degrees),
    # then 1/3 of the way from there to the third (at 135 degrees from it: 45 degrees more)
    c = torch.tensor([-1.0, 0.0])
    assert torch.allclose(combine([a, b / 2, c], "spherical"), torch.tensor([0.0, 1.0]), atol=1e-6)
    # parallel tensors: the arc is the chord, so SLERP is the average
    same = [torch.tensor([1.0, 1.0]) * k for k in (1, 2, 3)]
    assert torch.allclose(combine(same, "spherical"), torch.tensor([2.0, 2.0]), atol=1e-6)


@pytest.mark.parametrize("flags, says", [
    (["--merge-checkpoints", "2", "--save-steps", "0"], "needs checkpoints: set save_steps"),
    (["--merge-checkpoints", "3", "--save-steps", "5", "--save-total-limit", "2"], "keep at least as many"),
    (["--merge-checkpoints", "1"], "at least 2"),
    (["--merge-checkpoints", "2", "--save-steps", "5", "--export-adapter-only"], "not an adapter of rank"),
    (["--false-negative-margin", "-0.1"], "must be >= 0"),
    (["--matryoshka-dims", "64,0"], "widths must be > 0"),
    (["--merge-method", "median"], "choose one of average, spherical"),
])
def test_bad_settings_are_named_before_anything_runs(flags, says):
    with pytest.raises(ConfigError, match=says):
        parse(TrainConfig, ["--config", str(SMOKE), *flags])


def test_too_few_checkpoints_for_the_merge_stop_before_training(tmp_path):
    import os

    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "train.py", "--config", str(SMOKE), "--data", str(SAMPLE),
                           "--output-dir", str(out), "--max-steps", "4", "--save-steps", "4",
                           "--merge-checkpoints", "2"], cwd=ROOT, env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "ends with 1 checkpoint(s)" in done.stderr
    assert not (out / "train_log.jsonl").exists()


def test_a_matryoshka_model_loads_cut_and_scores_cut(lora_run, tmp_path):
    final = lora_run / "final"
    texts = ["a man plays a guitar", "a musician performs on stage", "the stock market fell"]
    whole = SentenceTransformer(str(final), device="cpu").encode(texts, convert_to_tensor=True)
    cut = SentenceTransformer(str(final), device="cpu", truncate_dim=16).encode(texts, convert_to_tensor=True)
    assert whole.shape == (3, 64) and cut.shape == (3, 16)
    assert torch.allclose(cut, whole[:, :16], atol=1e-6)
    info = json.loads((final / "training_info.json").read_text())
    assert info["matryoshka_dims"] == [64, 16]
    assert "truncate_dim=16" in (final / "README.md").read_text()

    # eval.py scores the cut model, filed apart from the whole one
    data = tmp_path / "data" / "STSBenchmark"
    data.mkdir(parents=True)
    pairs = (ROOT / "tests" / "data" / "eval" / "STSBenchmark" / "test.jsonl").read_text().splitlines()[:40]
    (data / "test.jsonl").write_text("\n".join(pairs) + "\n")
    import eval as eval_cli

    out = tmp_path / "eval"
    argv = ["--model", str(final), "--tasks", "STSBenchmark", "--data-dir", str(data.parent),
            "--output-dir", str(out), "--device", "cpu", "--chart", "false"]
    assert eval_cli.main([*argv, "--truncate-dim", "16"]) == 0
    assert eval_cli.main(argv) == 0
    folders = sorted(p.parent.name for p in out.glob("results/*/*/experiments/*/STSBenchmark.json"))
    assert len(folders) == 2 and sum("dim_16" in f for f in folders) == 1
    scores = [json.loads(p.read_text())["scores"]["test"][0]["main_score"]
              for p in out.glob("results/*/*/experiments/*/STSBenchmark.json")]
    assert all(-1 <= s <= 1 for s in scores) and scores[0] != scores[1]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert any(r["name"] == "STSBenchmark" for r in rows)
    # a cut wider than the model is named, not run
    assert eval_cli.main([*argv, "--truncate-dim", "65"]) == 2


def test_spherical_merge_of_zero_tensors_is_zero_not_nan():
    # a bias no step moved from its zero init (a fully fine-tuned MiniLM's unused pooler.dense.bias)
    zero = torch.zeros(4)
    assert torch.equal(combine([zero, zero.clone(), zero.clone()], "spherical"), zero)
    # one zero, one not: no direction to follow, so the chord
    assert torch.allclose(combine([zero, torch.ones(4)], "spherical"), torch.full((4,), 0.5))


def test_a_spherical_merge_with_an_untouched_zero_bias_writes_finite_weights(tmp_path):
    from recipe.train.merge import merge_into

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    paths = []
    for k in range(3):
        weights = {name: torch.randn_like(p) for name, p in model.named_parameters()}
        weights["1.bias"] = torch.zeros(2)  # never trained: zero in every checkpoint
        (tmp_path / f"step-{k}").mkdir()
        torch.save({"weights": weights}, tmp_path / f"step-{k}" / "state.pt")
        paths.append(tmp_path / f"step-{k}")
    merge_into(model, paths, "spherical")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(model[1].bias, torch.zeros(2))


def test_the_export_refuses_to_save_a_non_finite_weight_and_names_it(tmp_path):
    from recipe.train.export import WeightNotFinite, export
    from tests.eval_tiny_models import tiny_mistral_folder

    model = SentenceTransformer(str(tiny_mistral_folder(tmp_path / "m")), device="cpu")
    model.tokenizer.pad_token = model.tokenizer.eos_token  # as train.py's tokenizer set-up does
    name, weight = next((n, p) for n, p in model.named_parameters() if n.endswith("norm.weight"))
    with torch.no_grad():
        weight[1] = float("nan")
    cfg = TrainConfig(output_dir=str(tmp_path / "run"), lora=False, append_eos=False)
    out = tmp_path / "final"
    out.mkdir()
    with pytest.raises(WeightNotFinite, match=rf"run/final not written: the weight {name} holds NaN \(1 of its"):
        export(model, cfg, out, {})
    assert not any(out.iterdir())  # nothing saved
