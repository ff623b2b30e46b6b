"""Keep only the (query, positive) pairs an embedder agrees with (top-k rank and/or cosine).

    python data/filter_pairs.py --input out/synth --output out/synth-filtered.jsonl --top-k 10
    python data/filter_pairs.py --help            # every setting

The command itself is recipe/commands/filter_pairs.py (also installed as `e5-filter-pairs`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.filter_pairs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
