"""Write the E5-Mistral synthetic training data with an OpenAI-compatible teacher.

    python data/synthesize.py --config recipe/configs/synth_e5.yaml --out out/synth \
        [--num-examples N] [--concurrency C] [--model NAME] [--mode batch] [--max-cost USD]

The teacher is reached with the `openai` client: OPENAI_API_KEY and OPENAI_BASE_URL (OpenAI,
vLLM, TGI, Ollama, ...), or `--azure` with AZURE_OPENAI_ENDPOINT / AZURE_OPENAI_API_KEY.
Any key of the recipe can be set on the command line (`--help` lists them). Running the same
command again resumes the run: saved answers are never requested again.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from recipe.config import ConfigError, parse, usage  # noqa: E402
from recipe.synth.run import summary, synthesize  # noqa: E402
from recipe.synth.settings import SynthConfig  # noqa: E402
from recipe.synth.store import OutputError  # noqa: E402
from recipe.synth.teacher import BudgetReached, Fatal  # noqa: E402


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__ + "\nkeys (default, meaning):\n" + usage(SynthConfig))
        return 0
    try:
        cfg = parse(SynthConfig, argv)
        store = synthesize(cfg, argv)
    except (ConfigError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BudgetReached as e:
        print(f"stopped: {e}", file=sys.stderr)
        return 3
    except Fatal as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: everything received so far is saved; run the same command to resume",
              file=sys.stderr)
        return 130
    print(f"done: {summary(store)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
