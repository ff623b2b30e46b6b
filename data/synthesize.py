"""Write the E5-Mistral synthetic training data with an OpenAI-compatible teacher.

    python data/synthesize.py --config recipe/configs/synth_e5.yaml --output-dir out/synth --num-examples 1000
    python data/synthesize.py --help            # every setting

The command itself is recipe/commands/synthesize.py (also installed as `e5-synthesize`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.synthesize import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
