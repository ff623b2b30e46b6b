"""Every task type of MTEB runs through the encoder from local files, and each side of each type
gets what its protocol gives it.

Tiny synthetic rows in each task's own columns, a tiny decoder: what is checked is that mteb's
evaluators accept what the encoder returns and, type by type, which texts carry the instruction:
under `e5` every text but retrieval documents (the authors' released code), under `plain` only
what the model saved (its "query" prompt on the query side of retrieval and reranking).
"""

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402

from tests.eval_tiny_models import tiny_mistral_folder, write_beir  # noqa: E402
from recipe.eval.encoder import E5_INSTRUCTION_TEMPLATE, InstructEncoder  # noqa: E402
from recipe.eval.model import load_model  # noqa: E402
from recipe.eval.run import evaluate  # noqa: E402
from recipe.eval.settings import EvalConfig  # noqa: E402
from recipe.eval.tasks import select_tasks  # noqa: E402

SAVED_QUERY_PROMPT = "Instruct: retrieve\nQuery: "
# the instructions of unilm e5/utils.py `get_task_def_by_task_name_and_type` (the paper's Table 15)
AUTHORS = {
    "SciFact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "AskUbuntuDupQuestions": "Retrieve duplicate questions from AskUbuntu forum",
    "STSBenchmark": "Retrieve semantically similar text.",
    "Banking77Classification": "Given a online banking query, find the corresponding intents",
    "TwentyNewsgroupsClustering": "Identify the topic or theme of the given news articles",
    "SprintDuplicateQuestions": "Retrieve duplicate questions from Sprint forum",
    "SummEval": "Given a news summary, retrieve other semantically similar summaries",
}
WORDS = "the cat sleeps on a mat paris is capital of france man playing guitar woman slicing onion".split()


def sentence(i: int, n: int = 6) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n)) + f" {i}"


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_data(root):
    # the columns of each task's Hub dataset: mteb's dataset_transform renames them where needed
    write_beir(root)  # SciFact
    write_jsonl(root / "STSBenchmark" / "test.jsonl",
                [{"sentence1": sentence(i), "sentence2": sentence(i + 1), "score": float(i % 6)} for i in range(12)])
    write_jsonl(root / "Banking77Classification" / "train.jsonl",
                [{"text": sentence(i), "label": i % 3} for i in range(30)])
    write_jsonl(root / "Banking77Classification" / "test.jsonl",
                [{"text": sentence(i + 40), "label": i % 3} for i in range(9)])
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
    return tiny_mistral_folder(tmp_path_factory.mktemp("tiny"), query_prompt=SAVED_QUERY_PROMPT)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_data(root)
    return root


def expected_prompt(protocol: str, task: str, side: str):
    """What the texts of `task` on `side` (query, document, or none: a symmetric task) must carry."""
    task_type = select_tasks(tasks=[task])[0].metadata.type
    if protocol == "e5":
        if task_type == "Retrieval" and side == "document":
            return ""
        return E5_INSTRUCTION_TEMPLATE.format(instruction=AUTHORS[task])
    return SAVED_QUERY_PROMPT if side == "query" else None  # the model as saved


@pytest.mark.parametrize("protocol", ["e5", "plain"])
def test_each_task_type_puts_the_instruction_where_its_protocol_says(tiny_folder, data, tmp_path, protocol):
    model = load_model(str(tiny_folder), device="cpu")
    encoder = InstructEncoder(model, name="local/tiny", revision="test", protocol=protocol)
    seen, current = {}, {}
    encode, preprocess = encoder.encode, model.preprocess

    def recording_encode(inputs, *, task_metadata, prompt_type=None, **kwargs):
        current["key"] = (task_metadata.name, prompt_type.value if prompt_type else "none")
        return encode(inputs, task_metadata=task_metadata, prompt_type=prompt_type, **kwargs)

    def recording_preprocess(inputs, prompt=None, **kwargs):
        seen.setdefault(current["key"], set()).add(None if prompt is None else prompt)
        return preprocess(inputs, prompt=prompt, **kwargs)

    encoder.encode, model.preprocess = recording_encode, recording_preprocess
    cfg = EvalConfig(model=str(tiny_folder), tasks=list(AUTHORS), data_dir=str(data),
                     output_dir=str(tmp_path / "out"), chart=False, embedding_cache=False)
    outcome = evaluate(cfg, encoder=encoder)
    assert outcome.failed == {}
    assert set(outcome.scores) == set(AUTHORS)
    assert all(-1 <= score <= 1 for _, score in outcome.scores.values())
    types = {select_tasks(tasks=[t])[0].metadata.type for t in AUTHORS}
    assert types == {"Retrieval", "Reranking", "STS", "Classification", "Clustering",
                     "PairClassification", "Summarization"}
    # both sides of retrieval and reranking were encoded, and each side got one prompt, the right one
    assert {k for k in seen if k[0] in ("SciFact", "AskUbuntuDupQuestions")} == {
        (t, side) for t in ("SciFact", "AskUbuntuDupQuestions") for side in ("query", "document")}
    for (task, side), prompts in seen.items():
        want = expected_prompt(protocol, task, side)
        assert prompts == {want} or (want is None and prompts <= {None, ""}), (task, side, prompts)


def _no_model_encoder():
    class NoModel(InstructEncoder):
        def __init__(self):
            self.instruction_template = E5_INSTRUCTION_TEMPLATE
            self.paper_protocol = True

    return NoModel()


def test_every_task_of_both_english_benchmarks_gets_a_paper_instruction():
    from mteb.types import PromptType

    encoder = _no_model_encoder()
    tasks = []
    for task in select_tasks("both"):
        tasks += list(getattr(task.metadata, "tasks", None) or [task])  # CQADupstack: its 12 forums
    # v2 adds 16 tasks to v1's 56 (CQADupstack: 12 forums), two of them forums v1 has already
    assert len({t.metadata.name for t in tasks}) == 56 - 1 + 12 + 16 - 2
    generic = ("Retrieve text based on user query.", "Identify categories in user passages.")
    for task in tasks:
        prompt = encoder.prompt_for(task.metadata, PromptType.query)
        assert prompt.startswith("Instruct: ") and prompt.endswith("\nQuery: ") and len(prompt) > 30, task
        assert not any(g in prompt for g in generic), (task, prompt)
        # one instruction per task, on whichever side it goes; retrieval documents go bare
        document = encoder.prompt_for(task.metadata, PromptType.document)
        assert document == ("" if task.metadata.type == "Retrieval" else prompt), task
        assert encoder.prompt_for(task.metadata, None) == prompt
    # mteb gives the CQADupstack forums no instruction: each gets the authors' one, word for word
    (gis,) = [t for t in tasks if t.metadata.name == "CQADupstackGisRetrieval"]
    assert encoder.prompt_for(gis.metadata, PromptType.query) == (
        "Instruct: Given a question, retrieve detailed question descriptions from Stackexchange that are "
        "duplicates to the given question\nQuery: ")


def test_v2_variants_keep_the_instruction_of_the_paper_task_they_derive_from():
    from mteb.types import PromptType

    encoder = _no_model_encoder()

    def prompt(name):
        return encoder.prompt_for(select_tasks("both", [name])[0].metadata, PromptType.query)

    for variant, paper in [("FEVERHardNegatives", "FEVER"), ("Touche2020Retrieval.v3", "Touche2020"),
                           ("SummEvalSummarization.v2", "SummEval"),
                           ("ArXivHierarchicalClusteringS2S", "ArxivClusteringS2S")]:
        assert prompt(variant) == prompt(paper), variant
    assert prompt("SummEvalSummarization.v2") == E5_INSTRUCTION_TEMPLATE.format(instruction=AUTHORS["SummEval"])
