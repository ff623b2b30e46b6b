"""The Hugging Face Hub contracts, for models and data sets alike: what a Hub id is, the check that
a push may happen (made before any work, so that hours of training or a whole build do not end in
a refused upload), and the push itself, whose failures are one line.

    check_write(repo_id, MODEL)             # train.py --push-to-hub, before training
    push(folder, repo_id, DATASET, token=t) # data/publish.py; checks again, then one commit
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, first_line

# a name ending like one of these is a local file, never a Hub id (`org/data.jsonl` is a typo'd path)
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".tsv", ".txt", ".yaml", ".yml")
# on top of huggingface_hub's validate_repo_id: a namespace, and parts that start like a name
_SYNTAX = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_SYNTAX_HELP = ("need NAMESPACE/NAME (your user or organisation, a slash, the name; letters, digits, "
                "'-', '_', '.', at most 96 a part, no '--' or '..')")


class PublishError(InputError):
    """A push, or what it would publish, that cannot go ahead; the message says what to fix."""


def hub_id_problem(name: str | Path) -> str | None:
    """Why `name` is not a Hub repo id (None: it is one). The one rule, for every model and data
    set named on the command line and every repo pushed to:

    NAMESPACE/NAME, exactly one '/', each part letters, digits, '-', '_' or '.' starting with a
    letter or digit, and what huggingface_hub's `validate_repo_id` accepts (at most 96 characters
    a part, no '--' or '..', not ending in '-', '.' or '.git'); and not a local path: not on
    disk, not ending like a data file (DATA_SUFFIXES), NAMESPACE not a local folder
    (`out/rnu1`, a typo of `out/run1`, is a missing path, not a Hub error).
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    text = str(name)
    try:
        validate_repo_id(text)
    except HFValidationError:
        return _SYNTAX_HELP
    if not _SYNTAX.fullmatch(text):
        return _SYNTAX_HELP
    if Path(text).exists():
        return "a local path, not a Hub id"
    if text.lower().endswith(DATA_SUFFIXES):
        return "names a data file, not a Hub id"
    if Path(text.split("/")[0]).is_dir():
        return f"{text.split('/')[0]}/ is a local folder, so this is a path, not a Hub id"
    return None


def is_hub_id(name: str | Path) -> bool:
    """Whether `name` names a Hub repo rather than a local path (the rule: `hub_id_problem`)."""
    return hub_id_problem(name) is None


def check_hub_id(repo_id: str, flag: str) -> str:
    problem = hub_id_problem(repo_id or "")
    if problem:
        raise PublishError(f"{flag} {repo_id!r}: {problem}")
    return repo_id


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


@dataclass(frozen=True)
class Target:
    """What a push sends, and how its messages name the flags and the way round a failed push."""

    repo_type: str  # "model" or "dataset", as HfApi takes it
    flag: str  # the flag naming the repo
    command: str  # what asked for the push
    example: str  # a repo id for the "needs" message
    instead: str  # what to do without the Hub
    folder_kept: bool  # the pushed folder outlives a failed push, so the user can push it again


MODEL = Target("model", "--hub-model-id", "--push-to-hub", "you/e5-mistral-7b-repro",
               "push final/ later with `hf upload`", folder_kept=True)
DATASET = Target("dataset", "--repo-id", "data/publish.py", "you/e5-synthetic-data",
                 "write locally with --dry-run --output-dir DIR", folder_kept=False)


def check_write(repo_id: str, target: Target, token: str | None = None) -> str:
    """Before any work: a valid id, a token, a reachable Hub, and a token that may write under the
    id's namespace; returns the token. Raises PublishError (exit 2) naming what to fix."""
    from huggingface_hub import HfApi, get_token

    if not repo_id:
        raise PublishError(f"{target.command} needs {target.flag} (e.g. {target.example})")
    check_hub_id(repo_id, target.flag)
    token = token or get_token()
    if not token:
        raise PublishError(f"no Hugging Face token: set HF_TOKEN or run `hf auth login` (or {target.instead})")
    if hub_offline():
        raise PublishError(f"{target.command}: the Hub is switched off here (HF_HUB_OFFLINE is set); unset it "
                           f"or {target.instead}")
    try:
        me = HfApi(token=token).whoami()
    except Exception as e:  # HTTP, auth and network errors all end the check here
        raise PublishError(f"{target.command}: cannot check the token with the Hub ({first_line(e, 200)})") from None
    namespace = repo_id.split("/")[0]
    namespaces = {me.get("name")} | {org.get("name") for org in me.get("orgs", [])}
    if namespace not in namespaces:
        raise PublishError(f"{target.flag} {repo_id}: this token ({me.get('name')}) cannot write under "
                           f"{namespace!r}; it may write under {', '.join(sorted(filter(None, namespaces)))}")
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise PublishError(f"{target.command}: the Hugging Face token is read-only; use a token with write access")
    return token


def push(folder: str | Path, repo_id: str, target: Target, *, token: str | None = None,
         private: bool | None = None, commit_message: str | None = None,
         delete_patterns: list[str] | None = None) -> str:
    """Upload `folder` to `repo_id` in ONE commit (`HfApi.upload_folder`), so that a failure leaves
    the repo as it was; checks write access first. Returns the commit URL; every Hub failure is
    one PublishError line saying what was and was not pushed. `private`: None leaves a new repo's
    visibility to the Hub's default."""
    from huggingface_hub import HfApi

    api = HfApi(token=check_write(repo_id, target, token))
    kind = target.repo_type
    try:
        api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True)
        # create_repo(exist_ok=True) leaves an existing repo's visibility alone: never push what is
        # meant to be private into a repo that is public
        if private and not getattr(api.repo_info(repo_id, repo_type=kind), "private", False):
            raise PublishError(f"{repo_id} already exists and is public; --private does not change that "
                               "(make it private on the Hub or pick another name); nothing was pushed")
    except PublishError:
        raise
    except Exception as e:  # HTTP, auth and network errors all stop here, before any upload
        raise PublishError(f"cannot create {kind} repo {repo_id}: {first_line(e)}; nothing was pushed") from None
    try:
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=kind,
                                 commit_message=commit_message, delete_patterns=delete_patterns)
    except Exception as e:
        kept = f"; {folder} is kept: `hf upload {repo_id} {folder}` pushes it" if target.folder_kept else ""
        raise PublishError(f"upload to {repo_id} failed: {first_line(e)}; no commit was made, the repo "
                           f"(created if it did not exist) is unchanged{kept}") from None
    return getattr(info, "commit_url", str(info))
