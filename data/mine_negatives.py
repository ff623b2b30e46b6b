"""Mine a hard negative for every record that has none (public sets, short-short, long-long).

    python data/mine_negatives.py --input out/run1 --output out/run1-mined.jsonl
    python data/mine_negatives.py --input ORG/NAME --config-name all --output mined.jsonl
    python data/mine_negatives.py --input path/to/beir-folder --split train --output mined.jsonl \\
        --instruction "Given a web search query, retrieve relevant passages that answer the query"

Input: records (.jsonl/.parquet, a synthesis output folder, a published dataset's Hub id) or a
BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv: every relevant pair becomes a record
and the whole corpus is the candidate pool). The paper's miner: mE5-base, top-100. Candidates
within 5% of the positive's score are skipped as likely false negatives; every labelled positive
of the query is excluded. Embeddings are cached per model and text list (--cache-dir).
Any key can also come from a YAML file: --config FILE.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.config import ConfigError, parse, usage  # noqa: E402
from recipe.data import beir, mining  # noqa: E402
from recipe.data.records import read_records, write_jsonl  # noqa: E402


@dataclass
class MineConfig(mining.MiningSettings):
    input: str = field(default="", metadata={"help": "records, synthesis folder, Hub dataset id, or BEIR folder"})
    output: str = field(default="", metadata={"help": "output .jsonl (all records, negatives filled)"})
    config_name: str | None = field(default=None, metadata={"help": "config of a published dataset (e.g. all)"})
    split: str = field(default="train", metadata={"help": "dataset split, or the BEIR qrels file name"})
    model: str = field(default="intfloat/multilingual-e5-base", metadata={"help": "sentence-transformers model or path"})
    max_seq_length: int = field(default=512, metadata={"help": "truncate texts to this many tokens"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: best available)"})
    instruction: str = field(default="Given a web search query, retrieve relevant passages that answer the query",
                             metadata={"help": "BEIR input: the records' instruction"})
    source: str = field(default="", metadata={"help": "BEIR input: records' source name (default: folder name)"})
    language: str = field(default="English", metadata={"help": "BEIR input: records' language"})
    progress: bool = field(default=True, metadata={"help": "progress bars and mining statistics"})
    cache_dir: str | None = field(default="~/.cache/e5-recipe/embeddings",
                                  metadata={"help": "embedding cache folder (per model, then per text list); null: off"})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(__doc__ + "\nKeys:\n" + usage(MineConfig))
        return 0
    try:
        cfg = parse(MineConfig, argv)
        if not cfg.input or not cfg.output:
            raise ConfigError("command line: --input and --output are required")
        extra = []
        if beir.is_beir_folder(cfg.input):
            corpus, queries, qrels = beir.read_beir_folder(cfg.input, cfg.split)
            records = list(beir.beir_records(corpus, queries, qrels, instruction=cfg.instruction,
                                             source=cfg.source or Path(cfg.input).name, language=cfg.language))
            extra = [beir.doc_text(d) for d in corpus]
        else:
            records = list(read_records(cfg.input, config=cfg.config_name, split=cfg.split))
        if not records:
            raise ConfigError(f"{cfg.input}: no records")
        model = mining.load_embedder(cfg.model, cfg.max_seq_length, cfg.device)
        if cfg.cache_dir:
            cfg.cache_dir = str(Path(cfg.cache_dir).expanduser())
        settings = mining.MiningSettings(**{f.name: getattr(cfg, f.name) for f in fields(mining.MiningSettings)})
        records, counts = mining.mine(records, model, settings, model_id=cfg.model, extra_corpus=extra,
                                      progress=cfg.progress)
        write_jsonl(records, cfg.output)
    except (ValueError, OSError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"{len(records)} records to {cfg.output}: {counts['needed']} needed a negative, {counts['mined']} mined, "
          f"{counts['not_found']} left without one (every candidate filtered out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
