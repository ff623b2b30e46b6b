"""Train a text embedder with the E5-Mistral recipe: LoRA + InfoNCE at a global batch of 2048.

    accelerate launch --config_file accelerate_config.yaml --num_processes 8 train.py --config recipe/configs/e5_mistral_7b.yaml
    python train.py --config recipe/configs/smoke.yaml          # anywhere, on CPU, in under two minutes
    python train.py --help                                       # every key; any key as --key-name value

The command is recipe/commands/train.py (also installed as `e5-train`; `accelerate launch -m
recipe.commands.train ...` works too); the run itself, which reads top to bottom, recipe/train/run.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's `recipe`, not an installed one

from recipe.commands.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
