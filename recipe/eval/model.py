"""Load the model to evaluate: a SentenceTransformer folder or Hub id, checked and set up the paper's way.

The paper's contract for a decoder (last-token pooling) is that every input ends with EOS and
that the EOS vector is the embedding. transformers >= 5 stopped appending EOS for Mistral's
tokenizer (mteb issue 5230), so pooling would silently read the last word: `ensure_eos`
(recipe/eos.py, the contract training runs too) makes the tokenizer append it and checks that
it does, truncation included.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..eos import ensure_eos, pad_with_eos
from ..errors import InputError
from ..hub import is_hub_id
from ..local_models import packaged
from ..plain_text import drop_chat_modality

class ModelError(InputError):
    """A model that cannot be evaluated as asked; the message names the path and what is missing."""


def check_pooling_config(name_or_path: str) -> None:
    """A local folder must be a SentenceTransformer folder with a Pooling module, not a bare HF model.

    (sentence-transformers would otherwise silently add mean pooling, which is not how a
    last-token model was trained.)
    """
    path = Path(name_or_path)
    if not path.exists():
        if not is_hub_id(name_or_path):
            raise ModelError(f"--model {name_or_path}: no such model folder (and not a Hub id owner/name)")
        return _check_hub_pooling(name_or_path)
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        raise ModelError(f"{path}: no pooling configuration ({modules_file} is missing); save the "
                         "model with sentence-transformers (train.py does) so its pooling is known")
    modules = json.loads(modules_file.read_text())
    if not any(m.get("type", "").endswith("Pooling") for m in modules):
        raise ModelError(f"{modules_file}: no Pooling module listed; the pooling is unknown")


def _check_hub_pooling(repo_id: str) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError)

    try:
        hf_hub_download(repo_id, "modules.json")
    except LocalEntryNotFoundError:  # offline, or the Hub unreachable, and not in the cache
        raise ModelError(f"{repo_id}: not in the local Hugging Face cache and the Hub cannot be "
                         "reached; download it first or pass a local folder") from None
    except RepositoryNotFoundError:
        raise ModelError(f"{repo_id}: no such model on the Hub (or no access to it)") from None
    except EntryNotFoundError:
        raise ModelError(f"{repo_id}: no pooling configuration (modules.json) on the Hub") from None
    except HfHubHTTPError as e:
        raise ModelError(f"{repo_id}: the Hub answered {e}") from None


def default_dtype(device: str) -> torch.dtype:
    """fp16 on GPU as the paper evaluated (unilm e5 `--fp16`); fp32 on CPU, where fp16 is slow."""
    return torch.float16 if device.startswith("cuda") else torch.float32


def load_model(name_or_path: str, *, max_length: int = 512, dtype: str = "auto",
               device: str | None = None, truncate_dim: int | None = None, append_eos: bool = True):
    """Load, check the pooling, cut inputs at `max_length` tokens (embeddings at `truncate_dim`
    dimensions) and, for last-token pooling, force EOS (unless `append_eos` is false: a prompt
    such as PromptEOL's ends each input with the token to read)."""
    from sentence_transformers import SentenceTransformer

    check_pooling_config(name_or_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = default_dtype(device) if dtype == "auto" else getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ModelError(f"--dtype {dtype!r}: not a torch dtype (auto, float16, bfloat16, float32)")
    model = SentenceTransformer(name_or_path, device=device, truncate_dim=truncate_dim,
                                model_kwargs={"dtype": torch_dtype})
    width = model.get_embedding_dimension()
    if truncate_dim is not None and width is not None and truncate_dim > width:
        raise ModelError(f"--truncate-dim {truncate_dim}: {name_or_path} embeds in {width} dimensions")
    model.max_seq_length = max_length
    tokenizer = model.tokenizer
    pad_with_eos(tokenizer)
    if pooling_mode(model) == "lasttoken":
        # the recipe's text, never a chat template around it (a folder saved with the chat
        # modality: recipe/plain_text.py); a template's trailing tokens would also break the EOS
        drop_chat_modality(model[0])
        if append_eos:
            ensure_eos(tokenizer, where=name_or_path)
    return model


def pooling_mode(model) -> str | None:
    from sentence_transformers.sentence_transformer.modules import Pooling

    for module in model:
        if isinstance(module, Pooling):
            mode = module.pooling_mode
            return mode if isinstance(mode, str) else "+".join(mode)
    return None


def revision_of(name_or_path: str, model) -> str:
    """The Hub commit for a Hub model; for a folder, a hash of its config and file sizes.

    mteb files results under name/revision and skips tasks already there, so a retrained
    model written to the same folder must not reuse the old model's results.
    """
    path = Path(name_or_path)
    if not path.exists():
        return model.model_card_data.base_model_revision or _cached_commit(name_or_path) or "main"
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path)}:{f.stat().st_size}".encode())
        if f.suffix == ".json":
            h.update(f.read_bytes())
    return "local-" + h.hexdigest()[:12]


def _cached_commit(repo_id: str) -> str | None:
    """The commit of the Hub cache's snapshot the model was loaded from: offline, sentence-transformers
    cannot ask the Hub, and a leaderboard submission needs the commit, not "main"."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "modules.json")
    return Path(found).parent.name if isinstance(found, str) else None


def model_name(name_or_path: str) -> str:
    """mteb wants owner/name; a folder becomes local/<folder name> (or <parent>-<folder> for .../final)."""
    path = Path(name_or_path)
    if not path.exists():
        return name_or_path
    copy = packaged(name_or_path)  # a packaged copy of a Hub model: by its short name, not its folder's
    if copy:
        return f"local/{copy.name}"
    path = path.resolve()
    name = f"{path.parent.name}-{path.name}" if path.name in ("final", "model") else path.name
    return f"local/{name}"
