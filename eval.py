"""Evaluate an embedding model on MTEB the way the E5-Mistral paper did, beside its published scores.

    python eval.py --model OUTPUT/final --benchmark "MTEB(eng, v1)" [--output-dir out/eval]
    python eval.py --model intfloat/e5-mistral-7b-instruct --tasks SciFact,STS12
    python eval.py --model OUTPUT/final --task-types Retrieval
    python eval.py --model OUTPUT/final --benchmark BEIR          # or MIRACL
    python eval.py --model OUTPUT/final --tasks STSBenchmark --data-dir DIR   # DIR/STSBenchmark/test.jsonl

Queries read `Instruct: {task instruction}\\nQuery: {text}`, documents nothing; inputs are cut at
512 tokens and end with EOS; fp16 on GPU. Writes mteb's result files, results.md, results.csv
and categories.png under --output-dir; running the same command again skips finished tasks.
Any key can also come from a YAML file (`--config FILE`); `--help` lists them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from recipe.config import ConfigError, parse, usage  # noqa: E402
from recipe.eval.local_data import LocalDataError  # noqa: E402
from recipe.eval.model import ModelError  # noqa: E402
from recipe.eval.report import to_markdown  # noqa: E402
from recipe.eval.run import evaluate  # noqa: E402
from recipe.eval.settings import EvalConfig  # noqa: E402
from recipe.eval.tasks import TaskSelectionError  # noqa: E402


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__ + "\nkeys (default, meaning):\n" + usage(EvalConfig))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse(EvalConfig, argv)
        if not cfg.model:
            raise ConfigError("command line: --model is required (a folder or a Hub id)")
        outcome = evaluate(cfg)
    except (ConfigError, TaskSelectionError, ModelError, LocalDataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(to_markdown(outcome.rows, cfg.model, cfg.reference))
    for task, error in outcome.failed.items():
        print(f"failed: {task}: {error}", file=sys.stderr)
    print(f"results in {cfg.output_dir}", file=sys.stderr)
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
