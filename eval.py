"""Evaluate an embedding model on MTEB the way the E5-Mistral paper did, beside its published scores.

    python eval.py --model OUTPUT/final --benchmark "MTEB(eng, v1)" [--output-dir out/eval]
    python eval.py --model OUTPUT/final --tasks STSBenchmark,Banking77Classification --data-dir tests/data/eval
    python eval.py --help            # every setting

The command itself is recipe/commands/eval.py (also installed as `e5-eval`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's `recipe`, not an installed one

from recipe.commands.eval import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
