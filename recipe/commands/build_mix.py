"""Write a training mix (public sets + synthetic data, each at its ratio) as one records file.

    python data/build_mix.py --config recipe/configs/data_full.yaml --output out/full/mix.jsonl

The recipe lists the sources (see recipe/data/mix.py); public sets stream from the Hub.
Then fill missing negatives with data/mine_negatives.py.
Exit codes: 0 done, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import sys
from collections import Counter

from recipe import cli
from recipe.config import ConfigError, parse
from recipe.data.mix import MixConfig, iter_mix
from recipe.data.records import write_jsonl


def _main(argv: list[str]) -> int:
    cfg = parse(MixConfig, argv)
    if not cfg.output:
        raise ConfigError("command line: --output is required")
    counts = Counter()

    def counted():
        for rec in iter_mix(cfg):
            counts[rec["source"]] += 1
            yield rec

    n = write_jsonl(counted(), cfg.output)
    print(f"{n} records to {cfg.output}: " + ", ".join(f"{s} {c}" for s, c in counts.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv, doc=__doc__, config=MixConfig)


if __name__ == "__main__":
    sys.exit(main())
