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
Exit codes: 0 done, 1 some task failed (the others are scored), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import logging
import sys

from recipe import cli
from recipe.config import ConfigError, parse
from recipe.eval.report import to_markdown
from recipe.eval.run import evaluate
from recipe.eval.settings import EvalConfig


def _main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = parse(EvalConfig, argv)
    if not cfg.model:
        raise ConfigError("command line: --model is required (a folder or a Hub id)")
    outcome = evaluate(cfg)
    print(to_markdown(outcome.rows, cfg.model, cfg.reference))
    for task, error in outcome.failed.items():
        print(f"failed: {task}: {cli.one_line(error)}", file=sys.stderr)
    print(f"results in {cfg.output_dir}", file=sys.stderr)
    return 1 if outcome.failed else 0


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv, doc=__doc__, config=EvalConfig,
                   interrupted="interrupted: finished tasks are saved; run the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
