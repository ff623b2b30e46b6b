"""train.py's wiring: the loss it logs for its first step is the paper's InfoNCE recomputed here,
outside train.py, from the smoke recipe and the raw sample lines.

The other training tests check each part (the loss function, the batch, the data) on its own;
this one checks that the command joins them as the recipe says: its temperature, the query side
`Instruct: {instruction}\\nQuery: {query}`, documents bare, `num_negatives` hard negatives per
query beside every in-batch document, a query's own positive never its negative elsewhere in
the batch, EOS appended and pooled. The embeddings come from the run's own seeded base model
(peft starts LoRA's B at zero, so the first step's model is the base model), through the
`tokenizers` library and transformers' MistralModel, with BOS/EOS, last-token pooling and the
normalisation written out here; the InfoNCE is a loop over candidates, not recipe/train/loss.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml

from tests.train_helpers import ROOT, SMOKE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STEPS = 4  # enough for the warm-up and the decay of the smoke recipe's schedule (2 warm-up steps)
SAVED = 2  # the step whose checkpoint holds the run's optimiser


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("wiring") / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "train.py", "--config", str(SMOKE), "--output-dir", str(out),
                           "--max-steps", str(STEPS), "--save-steps", str(SAVED)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return out, yaml.safe_load(SMOKE.read_text()), rows


def first_batch(recipe: dict) -> tuple[list[str], list[str], list[list[str]]]:
    """Queries, positives and hard negatives of the first global batch, from the raw sample lines.
    The plan (a seeded shuffle) and the random fill of the records that come without a negative
    are read through the public functions; the texts the model sees are built here."""
    from recipe.train.data import complete_negatives, load_examples, plan_batches

    sample = ROOT / recipe["data"][0]
    raw = [json.loads(line) for line in sample.read_text().splitlines()]
    k = recipe["num_negatives"]
    examples = load_examples([str(sample)], [], recipe["query_template"], recipe["seed"])
    complete_negatives(examples, k, recipe["missing_negatives"], recipe["seed"])
    batch = plan_batches(examples, recipe["global_batch_size"], recipe["seed"], recipe["num_train_epochs"])[0]
    assert len(batch) == recipe["global_batch_size"]
    queries, positives, negatives = [], [], []
    for i in batch:
        r = raw[i]
        own = [r["negative"]] if isinstance(r["negative"], str) else list(r["negative"] or [])
        filled = examples[i].negatives[len(own):k]
        # the random fill takes another record's positive, of the same task group
        same_group = {x["positive"] for x in raw if x["task_group"] == r["task_group"]} - {r["positive"]}
        assert all(text in same_group for text in filled), r["id"]
        queries.append(f"Instruct: {r['instruction']}\nQuery: {r['query']}")
        positives.append(r["positive"])
        negatives.append((own + filled)[:k])
    return queries, positives, negatives


def embedder(folder, max_length: int):
    """Text -> unit vector: BOS + the text's tokens (cut so that EOS fits) + EOS, the last layer's
    hidden state at that EOS, L2-normalised. One text per forward: no padding to get wrong."""
    from tokenizers import Tokenizer
    from transformers import MistralModel

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    model = MistralModel.from_pretrained(folder).eval()

    def embed(text: str) -> torch.Tensor:
        ids = [bos] + tok.encode(text, add_special_tokens=False).ids[:max_length - 2] + [eos]
        with torch.no_grad():
            last = model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1].double()
        return last / last.norm()

    return embed


def infonce_by_hand(q, p, n, embed, temperature: float) -> tuple[float, int]:
    """Mean over queries of -log softmax(own positive) over the candidates: every positive and
    every hard negative of the batch, less the candidates whose text is a positive of the query
    (another record's copy of its positive, or the positive of another record with the same
    query), its own column excepted. Returns the loss and how many candidates were left out."""
    texts = p + [row[j] for j in range(len(n[0])) for row in n]
    vectors = [embed(t) for t in texts]
    left_out, total = 0, 0.0
    for i, query in enumerate(q):
        v = embed(query)
        mine = {p[j] for j in range(len(q)) if q[j] == query}
        logits = [float(v @ vectors[c]) / temperature for c in range(len(texts)) if c == i or texts[c] not in mine]
        left_out += len(texts) - len(logits)
        top = max(logits)
        total += top + math.log(sum(math.exp(x - top) for x in logits)) - float(v @ vectors[i]) / temperature
    return total / len(q), left_out


def test_first_logged_loss_is_infonce_recomputed_from_the_recipe(run):
    out, recipe, rows = run
    assert rows and rows[0]["step"] == 1
    q, p, n = first_batch(recipe)
    embed = embedder(out / "base" / "tiny-mistral", recipe["max_length"])
    want, left_out = infonce_by_hand(q, p, n, embed, recipe["temperature"])
    # the batch has texts the mask must leave out, so the comparison sees the mask too
    assert left_out > 0
    assert rows[0]["loss"] == pytest.approx(want, rel=1e-4)


def test_logged_learning_rate_warms_up_then_decays_linearly_to_zero(run):
    _, recipe, rows = run
    lr, warmup = recipe["learning_rate"], recipe["warmup_steps"]
    # the paper's schedule: linear warm-up, then linear decay to 0 at the last step; the log holds
    # the rate after each step's scheduler step
    want = [lr * (s / warmup if s < warmup else (STEPS - s) / (STEPS - warmup)) for s in range(1, STEPS + 1)]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["lr"] for r in rows] == pytest.approx(want, rel=1e-6, abs=1e-12)


def test_adamw_decays_every_lora_matrix_at_the_recipes_rate(run):
    out, recipe, _ = run
    state = torch.load(out / "checkpoints" / f"step-{SAVED:06d}" / "state.pt", weights_only=False)
    groups = state["optimizer"]["param_groups"]
    decayed = [i for g in groups if g["weight_decay"] == recipe["weight_decay"] for i in g["params"]]
    # A and B of the seven projections of each layer: all matrices, all decayed, nothing else trains
    assert len(decayed) == len(state["weights"]) == 2 * 7 * recipe["tiny_model"]["num_hidden_layers"]
    assert all(w.ndim == 2 for w in state["weights"].values())
    assert all(g["initial_lr"] == recipe["learning_rate"] for g in groups)
