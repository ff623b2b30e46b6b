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

from recipe import cli, log
from recipe.config import ConfigError, parse, setting
from recipe.data import beir, mining
from recipe.data.settings import EmbeddedRecords
from recipe.files import check_output_file, write_jsonl


@dataclass
class MineConfig(EmbeddedRecords, mining.MiningSettings):
    input: str = setting("", "records, synthesis folder, Hub dataset id, or BEIR folder")
    split: str = setting("train", "dataset split, or the BEIR qrels file name")
    output: str = setting("", "output .jsonl (all records, negatives filled)")
    progress: bool = setting(True, "progress bars and mining statistics")
    cache_dir: str | None = setting(
        "~/.cache/e5-recipe/embeddings", "embedding cache folder (per model, then per text list); null: off")
    instruction: str = setting(
        "", "instruction written into records that have none (BEIR input: all); '': they stay without one, so that "
        "train.py's --data-instructions gives it")
    source: str = setting("", "BEIR input: records' source name (default: folder name)")
    language: str = setting("English", "BEIR input: records' language")


def _main(argv: list[str]) -> int:
    cfg = parse(MineConfig, argv)
    cfg.check_sources()
    check_output_file(cfg.output, [cfg.input], cfg.overwrite, jsonl=True)
    extra = []
    if beir.is_beir_folder(cfg.input):
        corpus, queries, qrels = beir.read_beir_folder(cfg.input, cfg.split)
        records = list(beir.beir_records(corpus, queries, qrels, instruction=cfg.instruction or None,
                                         source=cfg.source or Path(cfg.input).name, language=cfg.language))
        extra = [beir.doc_text(d) for d in corpus]
        if not records:
            raise ConfigError(f"{cfg.input}: no records")
    else:
        records = [{**rec, "instruction": rec.get("instruction") or cfg.instruction or None} for rec in cfg.read()]
    model = cfg.load()
    mining.fill_prompts(cfg, model, cfg.model)
    if cfg.cache_dir:
        cfg.cache_dir = str(Path(cfg.cache_dir).expanduser())
    settings = mining.MiningSettings(**{f.name: getattr(cfg, f.name) for f in fields(mining.MiningSettings)})
    records, counts = mining.mine(records, model, settings, model_id=cfg.model, extra_corpus=extra,
                                  progress=cfg.progress and log.bars())
    write_jsonl(records, cfg.output)
    log.result(f"{len(records)} records to {cfg.output}: {counts['needed']} needed a negative, {counts['mined']} mined, "
               f"{counts['not_found']} left without one (every candidate filtered out)")
    return 0


main = cli.command(_main, doc=__doc__, config=MineConfig, module=__name__)
