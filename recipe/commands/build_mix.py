"""Write a training mix (public sets + synthetic data, each at its ratio) as one records file.

    python data/build_mix.py --config recipe/configs/data_full.yaml --output out/full/mix.jsonl

The recipe lists the sources (see recipe/data/mix.py); public sets stream from the Hub.
Then fill missing negatives with data/mine_negatives.py.
An existing --output is replaced only with --overwrite, and never by a source of the mix.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

from collections import Counter

from recipe import cli, log
from recipe.config import parse
from recipe.files import check_output_file, write_jsonl
from recipe.data.mix import MixConfig, iter_mix, local_inputs


def _main(argv: list[str]) -> int:
    cfg = parse(MixConfig, argv)
    # everything that can be wrong is found before the first record is read; the file appears
    # whole at the end (a failure half-way leaves an existing --output as it was)
    check_output_file(cfg.output, local_inputs(cfg), cfg.overwrite, jsonl=True)
    counts = Counter()

    def counted():
        for rec in iter_mix(cfg):
            counts[rec["source"]] += 1
            yield rec

    n = write_jsonl(counted(), cfg.output)
    log.result(f"{n} records to {cfg.output}: " + ", ".join(f"{s} {c}" for s, c in counts.items()))
    return 0


main = cli.command(_main, doc=__doc__, config=MixConfig, module=__name__)
