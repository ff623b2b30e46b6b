"""Evaluate an embedding model on MTEB the way the E5-Mistral authors did, beside the published scores.

    python eval.py --model OUTPUT/final --benchmark "MTEB(eng, v1)" [--output-dir out/eval]
    python eval.py --model OUTPUT/final --benchmark both          # MTEB(eng, v1) and MTEB(eng, v2)
    python eval.py --model intfloat/e5-mistral-7b-instruct --tasks SciFact,STS12
    python eval.py --model sentence-transformers/all-MiniLM-L6-v2 --benchmark "MTEB(eng, v2)"
    python eval.py --model OUTPUT/final --task-types Retrieval
    python eval.py --model OUTPUT/final --baseline BASE --tasks STSBenchmark --data-dir DIR   # one table, the difference
    python eval.py --model OUTPUT/final --benchmark BEIR          # or MIRACL
    python eval.py --model OUTPUT/final --tasks STSBenchmark --data-dir DIR   # DIR/STSBenchmark/test.jsonl
    python eval.py --model you/model --benchmark "MTEB(eng, v2)" --submission   # OUTPUT/submission/

The protocol (--protocol auto) is the E5 authors' for an instruction model (train.py's, or one
mteb knows as such): the task's instruction on queries and on every text of the non-retrieval
tasks, retrieval documents bare, inputs cut at 512 tokens ending with EOS, fp16 on GPU; any other
model runs as saved, as the leaderboard runs it. The run says which and why. Scores are set beside
a reference measured on the same data only: the published scores (tasks from the Hub), the
--baseline model's (scored here on the same tasks and data), or none (local data). Writes mteb's
result files, results.md, results.csv and categories.png under --output-dir, and a copy of the
tables under models/<model>/ that a run for another model leaves alone; running the same
command again skips finished tasks. --output-dir is new, empty, or one eval.py made (its
.e5-output.json lists the report files and submission/ it wrote, with their digests); it replaces
only those, unedited, and any other of those names only with --overwrite. Any key can also come
from a YAML file (`--config FILE`); `--help` lists them.
Exit codes: 0 done, 1 some task failed (the others are scored), 2 bad input (a local file mteb
cannot use included: the other tasks are scored), 130 interrupted.
"""

from __future__ import annotations

from recipe import cli, log
from recipe.config import parse
from recipe.eval.report import to_markdown
from recipe.eval.settings import EvalConfig
from recipe.sources import check_local_or_hub


def _main(argv: list[str]) -> int:
    cfg = parse(EvalConfig, argv)
    check_local_or_hub(cfg.model, "--model")  # a typo or an offline Hub id: one line now, not after the imports
    if cfg.baseline:
        check_local_or_hub(cfg.baseline, "--baseline")
    from recipe.eval.run import evaluate  # mteb, torch, sentence-transformers: not for --help

    outcome = evaluate(cfg)
    if outcome.scores:  # a header over no table reads as a success
        log.result(to_markdown(outcome.sections, outcome.model, outcome.protocol))
    for task, error in outcome.failed.items():
        log.error(f"failed: {task}: {cli.one_line(error)}")
    if not outcome.failed and not outcome.bad_data:
        log.say(f"results in {cfg.output_dir}")
        return 0
    # the last lines say that it failed and why: what a user reads first after a long run
    scored = (f"the other {len(outcome.scores)} are scored in {cfg.output_dir}" if outcome.scores
              else "nothing was scored")
    attempted = len(outcome.failed) + len(outcome.bad_data) + len(outcome.scores)
    for error in outcome.bad_data.values():  # the user's to fix: bad input, exit 2
        log.error(f"error: {cli.one_line(error)}")
    if outcome.failed:
        task, error = next(iter(outcome.failed.items()))
        log.error(f"error: {len(outcome.failed)} of {attempted} task(s) failed ({task}: {cli.one_line(error)[:300]}); {scored}")
    elif outcome.scores:
        log.say(scored)
    return 2 if outcome.bad_data else 1


main = cli.command(_main, doc=__doc__, config=EvalConfig,
                   interrupted="interrupted: finished tasks are saved; run the same command to resume",
                   module=__name__)
