"""Write a training mix (public sets + synthetic data, each at its ratio) as one records file.

    python data/build_mix.py --config recipe/configs/data_full.yaml --output out/full/mix.jsonl

The recipe lists the sources (see recipe/data/mix.py); public sets stream from the Hub.
Then fill missing negatives with data/mine_negatives.py.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.config import ConfigError, parse, usage  # noqa: E402
from recipe.data.mix import MixConfig, iter_mix  # noqa: E402
from recipe.data.records import write_jsonl  # noqa: E402


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(__doc__ + "\nKeys:\n" + usage(MixConfig))
        return 0
    counts = Counter()
    try:
        cfg = parse(MixConfig, argv)
        if not cfg.output:
            raise ConfigError("command line: --output is required")

        def counted():
            for rec in iter_mix(cfg):
                counts[rec["source"]] += 1
                yield rec

        n = write_jsonl(counted(), cfg.output)
    except (ValueError, OSError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"{n} records to {cfg.output}: " + ", ".join(f"{s} {c}" for s, c in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
