"""A local GGUF model (recipe/local_models.py) as a plain Hugging Face folder that train.py can
start from: safetensors weights, config and tokenizer, nothing quantized.

transformers loads a GGUF file as a real pretrained model, dequantized to fp32, but the loaded
model keeps a GGUF quantizer that refuses `save_pretrained`; so its weights are copied into a
model built from the same config without `quantization_config`, and that model is saved. The
folder is written under a temporary name and renamed into place, once per model (cached beside
the GGUF file); the dequantized weights are exactly what `from_pretrained(gguf_file=...)` gives.

    python -m recipe.train.local_student qwen2.5-coder-0.5b-instruct   # prints the folder
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recipe.files import atomic_dir
from recipe.local_models import MODELS, cache_dir, gguf_file
from recipe.lock import FolderLock

DONE = "e5_recipe_source.json"  # written last: a folder without it is not finished


def load_gguf(name: str):
    """(model, tokenizer) as transformers loads the GGUF file: a causal LM, dequantized to fp32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_file(name)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


def student_dir(name: str) -> Path:
    return cache_dir() / f"{name}-hf"


def student_folder(name: str) -> Path:
    """The model's plain HF folder, built once (atomic, one builder at a time) and reused."""
    target = student_dir(name)
    if (target / DONE).is_file():
        return target
    gguf = gguf_file(name)  # checks the name and the file before any lock or folder
    target.parent.mkdir(parents=True, exist_ok=True)
    with FolderLock(target.parent, what="model cache"):
        if (target / DONE).is_file():  # another process built it while we waited
            return target
        from transformers import AutoModelForCausalLM

        loaded, tokenizer = load_gguf(name)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)
        missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
        # tied output embeddings are the one key a plain model may lack in the GGUF's state dict
        missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
        if missing or unexpected:
            raise RuntimeError(f"{gguf}: weights do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
        from recipe.train.export import check_finite

        check_finite(plain.state_dict().items(), str(target))
        with atomic_dir(target, overwrite=target.exists()) as tmp:
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / DONE).write_text(json.dumps({
                "gguf": gguf.name, "sha256": MODELS[name].sha256, "upstream": MODELS[name].upstream,
                "packages": [f"{p}=={v}" for p, v in MODELS[name].packages]}, indent=2) + "\n")
    return target


def main(argv=None) -> int:
    from recipe import cli, log

    def _main(args):
        if len(args) != 1:
            from recipe.errors import InputError
            raise InputError(f"usage: python -m recipe.train.local_student NAME (one of {', '.join(sorted(MODELS))})")
        log.result(str(student_folder(args[0])))

    return cli.run(_main, argv, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
