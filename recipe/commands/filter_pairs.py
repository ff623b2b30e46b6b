"""Keep only the pairs an embedder agrees with: the positive ranks within the top k of its
query's candidates, and/or their cosine reaches a threshold (Qwen3-Embedding: 0.7).

    python data/filter_pairs.py --input out/synth --output out/synth-filtered.jsonl --top-k 10
    python data/filter_pairs.py --input mined.jsonl --output kept.jsonl --min-cosine 0.7 \\
        --model path/to/embedder --query-prompt "" --corpus-prompt ""

Input: records in any format the record reader knows (ours, sentence-transformers columns,
FlagEmbedding JSONL, other columns through --columns; .jsonl/.parquet, a synthesis output folder,
a dataset folder or Hub id). A query's candidates are every positive and hard negative of the
records of its source (or task group). Output: the records kept, as read (--output), and the
records removed, each with the reason, its rank and cosine (--removed, default
OUTPUT.removed.jsonl); a summary on stdout. Both files are written whole at the end and appear
together (a run stopped between the two leaves a note, .OUTPUT.pair.json, by which the same
command knows the half it finds as its own); an existing one is replaced only with --overwrite,
never an input. Any key can also come from a YAML file:
--config FILE.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

from recipe import cli, log
from recipe.config import parse, setting
from recipe.data import filtering, mining
from recipe.data.settings import EmbeddedRecords
from recipe.files import check_output_file, half_written, write_jsonl_together
from recipe.schema import beside


@dataclass
class FilterConfig(EmbeddedRecords, filtering.FilterSettings):
    removed: str = setting("", "output .jsonl: the records removed, each with its reason (default: OUTPUT with "
                           ".removed.jsonl)")
    instruction: str = setting("", "instruction of records that have none, for a --query-prompt with {instruction}")
    overwrite: bool = setting(False, "replace an existing --output and --removed")


def removed_path(cfg: FilterConfig) -> Path:
    return Path(cfg.removed) if cfg.removed else beside(cfg.output, ".removed.jsonl")


def check_files(cfg: FilterConfig) -> None:
    """The files it reads exist and the files it writes may be written, before anything is read."""
    cfg.check_sources()
    # a pair an earlier run of this command was stopped in the middle of writing is its own to replace
    ours = half_written([cfg.output, removed_path(cfg)])
    check_output_file(cfg.output, [cfg.input], cfg.overwrite or Path(cfg.output) in ours, jsonl=True)
    check_output_file(removed_path(cfg), [cfg.input, cfg.output], cfg.overwrite or removed_path(cfg) in ours,
                      flag="--removed", jsonl=True)


def _main(argv: list[str]) -> int:
    cfg = parse(FilterConfig, argv)
    check_files(cfg)
    records = cfg.read()
    model = cfg.load()
    mining.fill_prompts(cfg, model, cfg.model)
    settings = filtering.FilterSettings(**{f.name: getattr(cfg, f.name) for f in fields(filtering.FilterSettings)})
    verdicts = filtering.judge(records, model, settings, cfg.instruction, progress=cfg.progress and log.bars())
    kept, removed = filtering.split_by_verdict(records, verdicts)
    write_jsonl_together([(kept, cfg.output), (removed, removed_path(cfg))])
    counts = filtering.summary(verdicts)
    log.result(f"kept {counts['kept']} of {counts['read']} records in {cfg.output}; removed {counts['removed']} "
               f"({counts['below_top_k']} ranked below the top {cfg.top_k or '-'}, {counts['below_min_cosine']} "
               f"below cosine {cfg.min_cosine if cfg.min_cosine is not None else '-'}) into {removed_path(cfg)}")
    by_source = Counter(mining.group_key(r) or "(no source)" for r in removed)
    for source, n in by_source.most_common():
        log.result(f"  {source}: {n} removed")
    return 0


main = cli.command(_main, doc=__doc__, config=FilterConfig, module=__name__)
