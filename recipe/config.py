"""Run recipes: a dataclass filled from a YAML file, then from `--key value` on the command line.

One loader for every command, so that every recipe behaves the same way: each YAML key and each
command-line key must be a field of the command's dataclass, an unknown key is an error that
names it (and the file it came from), and values are checked against the field's type before
anything runs.

Every settings dataclass declares its fields with `setting(default, help)` and may define
`check(self) -> None`: the values a type check cannot catch (a range, a choice, two settings that
contradict each other), raising ConfigError, and the normalising of its own fields. `parse` calls
it; code that builds a settings object by hand calls it itself.

One dialect: `--kebab-case` on the command line, `snake_case` in YAML, one name per concept
across commands (`--output` a file, `--output-dir` a folder, `--max-length`, `--dtype`,
`--split`, `--dataset-config`, `--config FILE`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml

from .errors import InputError

T = TypeVar("T")


class ConfigError(InputError):
    """A recipe or command line that cannot be used; the message says what to fix."""


def setting(default: Any, help: str, choices: Sequence[Any] | None = None, **kw) -> Any:
    """A field of a settings dataclass: its default and the help text `--help` shows beside it.
    `choices`: the only values it takes (each item's, for a list), checked wherever a value is read
    (YAML, command line) and by `check_choices`; None (for an optional field) always passes.

    A list or mapping default is copied for each instance, so that no two share one."""
    metadata = {"help": help} if choices is None else {"help": help, "choices": tuple(choices)}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata, **kw)
    return dataclasses.field(default=default, metadata=metadata, **kw)


def _check_choice(value: Any, field: dataclasses.Field, where: str, from_cli: bool = False) -> None:
    allowed = field.metadata.get("choices")
    if allowed is None or value is None:
        return
    bad = [v for v in (value if isinstance(value, list) else [value]) if v not in allowed]
    if bad:
        name = f"{flag(field.name)} {bad[0]!r}" if from_cli else f"'{field.name}' = {bad[0]!r}"
        raise ConfigError(f"{where + ': ' if where else ''}{name}: choose one of {', '.join(map(str, allowed))}")


def check_choices(cfg, where: str = "") -> None:
    """Every field declared with `choices` holds one of them: for settings built in code, which
    neither YAML nor the command line has checked."""
    for f in dataclasses.fields(cfg):
        _check_choice(getattr(cfg, f.name), f, where)


def flag(key: str) -> str:
    """A key as the command line spells it: `output_dir` -> `--output-dir`."""
    return "--" + key.replace("_", "-")


def _known(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


# short names other tools use for a setting that here has transformers' TrainingArguments name:
# hinted at, never accepted (one name per concept)
OTHER_NAMES = {"lr": "learning_rate", "epochs": "num_train_epochs", "log_steps": "logging_steps",
               "log_every": "logging_steps", "num_epochs": "num_train_epochs", "out": "output_dir",
               "work_dir": "output_dir"}


def _close(key: str, known: dict) -> list[str]:
    other = OTHER_NAMES.get(key)
    return [other] if other in known else difflib.get_close_matches(key, list(known), n=3)


def _unknown_key(key: str, where: str, known: dict, from_cli: bool = False) -> ConfigError:
    """`key` as its source spells it: a YAML key, or a flag without its dashes."""
    if from_cli:
        close = _close(key.replace("-", "_"), known)
        hint = f" (did you mean {', '.join(flag(c) for c in close)}?)" if close else ""
        return ConfigError(f"{where}: unknown setting --{key}{hint}; --help lists them")
    close = _close(key, known)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return ConfigError(f"{where}: unknown config key '{key}'{hint}")


def _check(value: Any, tp: Any, key: str, where: str) -> Any:
    """Return `value` coerced to `tp` where that is lossless, else raise naming the key."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _check(value, option, key, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: '{key}' = {value!r} is not a {_name(tp)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: '{key}' = {value!r} is not null")
    if origin is list or tp is list:
        (item,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            if isinstance(value, str):  # `--key a,b,c` on the command line
                value = [v.strip() for v in value.split(",") if v.strip()]
                if item is int:  # `--matryoshka-dims 384,256`: each item read as YAML reads a number
                    value = [yaml.safe_load(v) for v in value]
            else:
                raise ConfigError(f"{where}: '{key}' = {value!r} is not a list")
        return [_check(v, item, key, where) for v in value]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' = {value!r} is not a mapping")
        kt, vt = typing.get_args(tp) or (Any, Any)
        return {_check(k, kt, key, where): _check(v, vt, key, where) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: '{key}' = {value!r} is not true/false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: '{key}' = {value!r} is not an integer")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        # NaN passes every comparison a later check makes (nan < 0 is False): it would be
        # accepted and then change nothing, or everything
        if number is not None and not math.isnan(number):
            return number
        raise ConfigError(f"{where}: '{key}' = {value!r} is not a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: '{key}' = {value!r} is not a string")
    return value


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _apply(cfg: T, values: dict, where: str, from_cli: bool = False) -> T:
    known = _known(type(cfg))
    hints = typing.get_type_hints(type(cfg))
    for spelled, value in values.items():
        # a flag names its field in kebab-case only: `--output_dir` is no flag of `output_dir`
        key = spelled.replace("-", "_") if from_cli else spelled
        if key not in known or (from_cli and "_" in spelled):
            raise _unknown_key(spelled, where, known, from_cli)
        if from_cli and isinstance(value, str):
            # the command line gives strings: read them as YAML scalars ("8" -> 8, "true" -> True),
            # but keep the raw text where the field wants a string ("--model 4" stays "4")
            # (a template such as 'This sentence : "{text}" means ...' is no YAML at all)
            try:
                parsed = yaml.safe_load(value) if value != "" and hints[key] is not str else value
                value = _check(parsed, hints[key], key, where)
            except (ConfigError, yaml.YAMLError):
                value = _check(value, hints[key], key, where)
        else:
            value = _check(value, hints[key], key, where)
        _check_choice(value, known[key], where, from_cli)
        setattr(cfg, key, value)
    return cfg


def load_yaml(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the recipe must be a mapping of keys to values")
    return _apply(cls(), data, str(path))


def split_cli(argv: Sequence[str]) -> dict[str, str]:
    """`--key value`, `--key=value` and a bare `--flag` (true) into a dict of the flags as spelled,
    without their dashes (`output-dir`)."""
    out: dict[str, str] = {}
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"command line: expected --key value, got {arg!r}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            else:
                value = "true"
        out[key] = value
        i += 1
    return out


def parse(cls: type[T], argv: Sequence[str], default_config: str | None = None) -> T:
    """Build `cls` from `--config PATH` (or `default_config`) and the other `--key value` pairs,
    then run its `check()`, so that no command starts on values a type cannot rule out."""
    values = split_cli(argv)
    path = values.pop("config", default_config)
    cfg = load_yaml(cls, path) if path else cls()
    cfg = _apply(cfg, values, "command line", from_cli=True)
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
    return cfg


def _shown(default) -> str:
    """A default as one line of YAML: a text with a line break shows it as \\n, in quotes."""
    if isinstance(default, str) and ("\n" in default or default != default.strip()):
        return json.dumps(default, ensure_ascii=False)
    shown = yaml.safe_dump(default, default_flow_style=True, width=10**6, allow_unicode=True).strip()
    return shown.removesuffix("...").strip()


def usage(cls: type) -> str:
    """One setting per line, as the command line spells it: flag, default and the field's help
    text in three columns (a default too wide for its column puts the help on the next line, in
    its column); then the common flags."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        rows.append((flag(f.name), _shown(default), f.metadata.get("help", "")))
    common = [("--config FILE", "", "read settings from a YAML file; flags override it"),
              ("--debug", "", "show the traceback of an error (or E5_DEBUG=1)"),
              ("--quiet", "", "no progress lines or bars; notes, errors and results still show"),
              ("--help", "", "this list")]
    flag_w = max(len(r[0]) for r in rows + common)
    default_w = min(24, max(len(r[1]) for r in rows))
    indent = 2 + flag_w + 1 + default_w + 1

    def entry(name: str, shown: str, text: str) -> list[str]:
        head = f"  {name:<{flag_w}} {shown:<{default_w}} "
        if len(head) > indent:  # the default is wider than its column: the help starts below it
            return [head.rstrip(), " " * indent + text]
        return [head + text]

    lines = ["Settings (--kebab-case on the command line, snake_case in a --config YAML file):"]
    for row in rows:
        lines += entry(*row)
    lines.append("")
    for row in common:
        lines += entry(*row)
    return "\n".join(line.rstrip() for line in lines)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
