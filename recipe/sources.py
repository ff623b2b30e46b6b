"""Where a model or a data set named on the command line lives: a local path or a Hub id.

`--model out/run/final` with a typo and `--model intfloat/e5-base` are spelled alike, so a name
that is not on disk is taken for a Hub id only when it is one (`recipe.hub.is_hub_id`); otherwise
the answer is "no such file or folder", not a Hub error the user cannot act on. Loading failures from the Hub
become one line that names the model and says what to do.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from .errors import InputError, first_line
from .hub import DATA_SUFFIXES, hub_offline, is_hub_id

# what a folder transformers, sentence-transformers or peft can load holds at its top
MODEL_FILES = ("config.json", "modules.json", "adapter_config.json", "config_sentence_transformers.json")


def check_local_or_hub(name: str, flag: str, what: str = "model") -> None:
    """Raise the missing-path error for a local name that does not exist; a Hub id passes. A local
    model folder must hold a model: a data folder given as --model is named as such, not left to
    transformers' "Unrecognized model ... model_type" after the data has been read."""
    path = Path(name).expanduser()
    if not path.exists() and not is_hub_id(name):
        raise InputError(f"{flag} {name}: no such {what} file or folder{close_names(name) if what == 'model' else ''}")
    if what == "model" and not path.exists() and hub_offline() and not in_hub_cache(name):
        raise load_error(name, flag, OSError("offline and not in the cache"))
    if what == "model" and path.is_dir() and not any((path / f).is_file() for f in MODEL_FILES):
        data = sorted(p.name for p in path.iterdir() if p.suffix in DATA_SUFFIXES or p.suffix == ".arrow")[:3]
        held = f" (it holds {', '.join(data)}: data, not a model?)" if data else ""
        raise InputError(f"{flag} {name}: not a model folder, no {' or '.join(MODEL_FILES[:2])}{held}; "
                         "give a model folder or a Hub model id")


def check_model(name: str, flag: str) -> None:
    """What a training --model takes, checked before any work: a packaged model's name (its files
    installed and intact), the tiny test model, a local model folder or a Hub id."""
    from .local_models import MODELS, gguf_file

    if name in MODELS:
        gguf_file(name)
    elif name != "tiny-mistral":
        check_local_or_hub(name, flag)


def close_names(name: str) -> str:
    """'; did you mean ...' with the known model names closest to a misspelt one, or ''."""
    from .local_models import known_names

    known = known_names()
    close = difflib.get_close_matches(name.lower(), list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(known[c] for c in close)}?" if close else ""


def in_hub_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds a model of this id (one of its top files)."""
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo_id, f), str) for f in MODEL_FILES)


def load_error(name: str, flag: str, error: BaseException, what: str = "model") -> InputError:
    """The one line for a model or data set that could not be loaded from `name`."""
    text = str(error)
    first = first_line(error, 300)
    if Path(name).expanduser().exists():
        return InputError(f"{flag} {name}: cannot load the {what} ({first})")
    if hub_offline() or "couldn't connect" in text.lower() or "offline" in text.lower():
        return InputError(f"{flag} {name}: not a local folder, not in the local Hugging Face cache, and the "
                          "Hub cannot be reached (HF_HUB_OFFLINE or no network); download it first or give a "
                          f"local folder{close_names(name) if what == 'model' else ''}")
    if "not a valid model identifier" in text or "Repository Not Found" in text or "404" in text:
        return InputError(f"{flag} {name}: not a local folder and no such {what} on the Hub "
                          f"(or no access: `hf auth login`){close_names(name) if what == 'model' else ''}")
    return InputError(f"{flag} {name}: cannot load the {what} ({first})")
