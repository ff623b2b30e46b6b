"""Write the E5-Mistral synthetic training data with an OpenAI-compatible teacher.

    python data/synthesize.py --config recipe/configs/synth_e5.yaml --output-dir out/synth \\
        [--num-examples N] [--concurrency C] [--model NAME] [--mode batch] [--max-cost USD]

The teacher is reached with the `openai` client: OPENAI_API_KEY and OPENAI_BASE_URL (OpenAI,
vLLM, TGI, Ollama, ...), or `--azure` with AZURE_OPENAI_ENDPOINT / AZURE_OPENAI_API_KEY.
Running the same command again resumes the run: saved answers are never requested again.
One process per output folder: a second one is refused, naming the first's PID.
Exit codes: 0 done, 2 bad input, 3 stopped (budget, reject rate, outage), 130 interrupted (resume by
running again).
"""

from __future__ import annotations


from recipe import cli, log
from recipe.config import parse
from recipe.synth.run import summary, synthesize
from recipe.synth.settings import SynthConfig


def _main(argv: list[str]) -> int:
    cfg = parse(SynthConfig, argv)
    store = synthesize(cfg, argv)
    log.say(f"{'nothing to do' if store.nothing_to_do else 'done'}: {summary(store)}")
    return 0


main = cli.command(_main, doc=__doc__, config=SynthConfig,
                   interrupted="interrupted: everything received so far is saved; run the same command to resume",
                   module=__name__)
