"""Write a training mix (public sets + synthetic data, each at its ratio) as one records file.

    python data/build_mix.py --config recipe/configs/data_full.yaml --output out/full/mix.jsonl
    python data/build_mix.py --help            # every setting

The command itself is recipe/commands/build_mix.py (also installed as `e5-build-mix`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.build_mix import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
