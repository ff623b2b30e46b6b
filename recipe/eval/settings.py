"""The evaluation recipe: every setting of `eval.py`, with its default and meaning."""

from __future__ import annotations

from dataclasses import dataclass, field

from .encoder import E5_INSTRUCTION_TEMPLATE


def _f(default, help: str):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class EvalConfig:
    model: str = _f("", "SentenceTransformer folder (train.py's OUTPUT/final) or Hub id")
    benchmark: str = _f("MTEB(eng, v1)", "mteb benchmark (also BEIR; MIRACL = its 16 paper "
                        "languages); '' to pick --tasks from all of mteb")
    tasks: list[str] = _f([], "only these tasks, comma separated (default: the whole benchmark)")
    task_types: list[str] = _f([], "only these task types, e.g. Retrieval,STS")
    data_dir: str | None = _f(None, "read each task from DIR/<TaskName>/ instead of the Hub")
    output_dir: str = _f("out/eval", "mteb result files, results.md/.csv, categories.png")
    instruction_template: str | None = _f(
        E5_INSTRUCTION_TEMPLATE, "query-side template with {instruction}; null runs the model "
        "as saved (its own prompts), as the leaderboard does for plain models")
    max_length: int = _f(512, "tokens per input, EOS included (the paper: 512)")
    batch_size: int = _f(32, "texts per forward pass (sorted by length first)")
    dtype: str = _f("auto", "auto (float16 on GPU as the paper, float32 on CPU), bfloat16, ...")
    device: str | None = _f(None, "cuda / cpu (default: cuda when available; all GPUs are used)")
    reference: str = _f("model_card", "published E5-Mistral column: model_card (the paper's) "
                        "or results_repo (the leaderboard's re-runs)")
    embedding_cache: bool = _f(True, "keep embeddings under OUTPUT/embeddings so a repeated or "
                               "resumed run does not encode the same texts twice")
    overwrite: bool = _f(False, "re-run tasks that already have results in OUTPUT")
    chart: bool = _f(True, "draw categories.png")
