"""Publish a synthesis output folder to the Hugging Face Hub, with a dataset card.

    python data/publish.py --input out/run1 --repo-id ORG/NAME [--private]
    python data/publish.py --input out/run1 --repo-id ORG/NAME --dry-run --output-dir out/run1-hub
    python data/publish.py --help            # every setting

The command itself is recipe/commands/publish.py (also installed as `e5-publish`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.publish import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
