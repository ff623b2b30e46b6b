"""Serve a local GGUF model as an OpenAI-compatible teacher on 127.0.0.1 (llama.cpp via xllamacpp).

    python data/local_teacher.py --model qwen2.5-coder-0.5b-instruct --port 8081 --threads 1
    python data/local_teacher.py --help            # every setting

The command itself is recipe/commands/local_teacher.py (also installed as `e5-local-teacher`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's `recipe`, not an installed one

from recipe.commands.local_teacher import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
