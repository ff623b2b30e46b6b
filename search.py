"""Search your own documents with a trained model: encode them once, then answer queries.

    python search.py --model out/run1/final --corpus my-docs/ --query "how long to proof sourdough"
    python search.py --help            # every setting

The command itself is recipe/commands/search.py (also installed as `e5-search`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's `recipe`, not an installed one

from recipe.commands.search import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
