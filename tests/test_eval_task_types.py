"""Every task category of MTEB(eng, v1) runs through the encoder from local files.

Tiny synthetic rows in each task's own columns, a tiny decoder: what is checked is that mteb's
evaluator for pair classification, clustering, reranking and summarization accepts what the
encoder returns and that each gets the instruction the protocol gives it (STS, classification
and retrieval are covered by the other test files with real data).
"""

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402

from tests.eval_tiny_models import tiny_mistral_folder  # noqa: E402
from recipe.eval.encoder import E5_INSTRUCTION_TEMPLATE, InstructEncoder  # noqa: E402
from recipe.eval.model import load_model  # noqa: E402
from recipe.eval.run import evaluate  # noqa: E402
from recipe.eval.settings import EvalConfig  # noqa: E402
from recipe.eval.tasks import select_tasks  # noqa: E402

WORDS = "the cat sleeps on a mat paris is capital of france man playing guitar woman slicing onion".split()


def sentence(i: int, n: int = 6) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)) + f" {i}"


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_data(root):
    # the columns of each task's Hub dataset: mteb's dataset_transform renames them where needed
    write_jsonl(root / "SprintDuplicateQuestions" / "test.jsonl",
                [{"sent1": sentence(i), "sent2": sentence(i + i % 2), "labels": 1 - i % 2}
                 for i in range(20)])
    write_jsonl(root / "TwentyNewsgroupsClustering" / "test.jsonl",
                [{"sentences": [sentence(i) for i in range(30)], "labels": [i % 3 for i in range(30)]}])
    write_jsonl(root / "SummEval" / "test.jsonl",
                [{"text": sentence(i, 20), "human_summaries": [sentence(i), sentence(i + 1)],
                  "machine_summaries": [sentence(i + k) for k in range(4)],
                  "relevance": [1.0, 2.0, 4.0, 5.0]} for i in range(4)])
    rerank = root / "AskUbuntuDupQuestions"
    write_jsonl(rerank / "corpus.jsonl", [{"_id": f"d{i}", "text": sentence(i)} for i in range(12)])
    write_jsonl(rerank / "queries.jsonl", [{"_id": f"q{i}", "text": sentence(i + 50)} for i in range(3)])
    (rerank / "qrels").mkdir()
    (rerank / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(3)))
    write_jsonl(rerank / "top_ranked" / "test.jsonl",
                [{"query-id": f"q{i}", "corpus-ids": [f"d{j}" for j in range(i, i + 5)]} for i in range(3)])


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_mistral_folder(tmp_path_factory.mktemp("tiny"))


def test_pair_classification_clustering_reranking_summarization_run_with_their_instructions(tiny_folder, tmp_path):
    make_data(tmp_path / "data")
    names = ["SprintDuplicateQuestions", "TwentyNewsgroupsClustering", "AskUbuntuDupQuestions", "SummEval"]
    model = load_model(str(tiny_folder), device="cpu")
    prompts = []
    original = model.encode
    model.encode = lambda texts, prompt=None, **kw: prompts.append(prompt) or original(texts, prompt=prompt, **kw)
    encoder = InstructEncoder(model, name="local/tiny", revision="test")
    cfg = EvalConfig(model=str(tiny_folder), tasks=names, data_dir=str(tmp_path / "data"),
                     output_dir=str(tmp_path / "out"), chart=False, embedding_cache=False)
    outcome = evaluate(cfg, encoder=encoder)
    assert outcome.failed == {}
    assert set(outcome.scores) == set(names)
    assert all(-1 <= score <= 1 for _, score in outcome.scores.values())
    # SummEval: the paper's wording, not mteb's default (which ends with a full stop)
    expected = {E5_INSTRUCTION_TEMPLATE.format(instruction=t.metadata.prompt or
                                               "Given a news summary, retrieve other semantically similar summaries")
                for t in select_tasks(tasks=names)}
    assert set(prompts) == expected | {""}  # "" = the reranking candidates (documents)


def test_every_query_side_of_the_56_tasks_gets_a_paper_instruction():
    from recipe.eval.encoder import paper_instruction

    class NoModel(InstructEncoder):
        def __init__(self):
            self.instruction_template = E5_INSTRUCTION_TEMPLATE
            self.paper_protocol = True

    encoder = NoModel()
    from mteb.types import PromptType

    tasks = []
    for task in select_tasks():
        tasks += list(getattr(task.metadata, "tasks", None) or [task])  # CQADupstack: its 12 forums
    assert len(tasks) == 56 - 1 + 12
    for task in tasks:
        prompt = encoder.prompt_for(task.metadata, PromptType.query)
        assert prompt.startswith("Instruct: ") and prompt.endswith("\nQuery: ") and len(prompt) > 30, task
        assert encoder.prompt_for(task.metadata, PromptType.document) == ""
    assert paper_instruction("CQADupstackGisRetrieval").startswith("Given a question, retrieve detailed")
