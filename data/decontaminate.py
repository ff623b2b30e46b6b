"""Remove the training records that overlap the evaluation data (exact, contained, near duplicates).

    python data/decontaminate.py --input out/synth --output out/synth-clean.jsonl --benchmark "MTEB(eng, v2)"
    python data/decontaminate.py --help           # every setting

The command itself is recipe/commands/decontaminate.py (also installed as `e5-decontaminate`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.decontaminate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
