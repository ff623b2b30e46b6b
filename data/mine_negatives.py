"""Mine a hard negative for every record that has none (public sets, short-short, long-long).

    python data/mine_negatives.py --input out/run1 --output out/run1-mined.jsonl
    python data/mine_negatives.py --help            # every setting

The command itself is recipe/commands/mine_negatives.py (also installed as `e5-mine-negatives`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.mine_negatives import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
