"""The shared recipe loader: YAML then `--key value`, unknown keys named, types checked."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recipe.config import ConfigError, check_choices, parse, setting


@dataclass
class Demo:
    name: str = "a"
    steps: int = 1
    lr: float = 1e-4
    flag: bool = False
    tags: list[str] = field(default_factory=list)
    model: str | dict[str, float] = "m"


def test_yaml_then_cli_overrides(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("steps: 5\nlr: 0.5\ntags: [x, y]\n")
    cfg = parse(Demo, ["--config", str(p), "--steps", "7", "--flag", "--name=42"])
    assert (cfg.steps, cfg.lr, cfg.flag, cfg.tags, cfg.name) == (7, 0.5, True, ["x", "y"], "42")


def test_union_and_list_from_cli():
    cfg = parse(Demo, ["--model", "{gpt-4: 0.75, gpt-3.5-turbo: 0.25}", "--tags", "a,b"])
    assert cfg.model == {"gpt-4": 0.75, "gpt-3.5-turbo": 0.25}
    assert cfg.tags == ["a", "b"]
    assert parse(Demo, ["--model", "gpt-4o"]).model == "gpt-4o"


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("stepz: 5\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: unknown config key 'stepz' \(did you mean 'steps'\?\)"):
        parse(Demo, ["--config", str(p)])


def test_unknown_key_on_cli():
    with pytest.raises(ConfigError, match="command line: unknown setting --nope"):
        parse(Demo, ["--nope", "1"])


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match="'steps' = 'many' is not an integer"):
        parse(Demo, ["--steps", "many"])


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        parse(Demo, ["--config", "/nonexistent.yaml"])


def test_a_string_flag_keeps_its_text_even_where_it_is_no_yaml():
    template = 'This sentence : "{text}" means in one word:"'
    assert parse(Demo, ["--name", template]).name == template
    assert parse(Demo, ["--name", "null"]).name == "null"  # a str field: the text, never YAML's None
    assert parse(Demo, ["--model", 'a: "b']).model == 'a: "b'  # no YAML: the text, for the union's str


@dataclass
class Chosen:
    side: str = setting("right", "left or right", choices=("left", "right"))
    arms: list[str] = setting(["a"], "some of a, b", choices=("a", "b"))
    dtype: str | None = setting(None, "one of f16, f32, or null", choices=("f16", "f32"))


def test_choices_are_checked_in_each_dialect_and_in_code(tmp_path):
    with pytest.raises(ConfigError, match=r"^command line: --side 'up': choose one of left, right$"):
        parse(Chosen, ["--side", "up"])
    with pytest.raises(ConfigError, match=r"^command line: --arms 'c': choose one of a, b$"):
        parse(Chosen, ["--arms", "a,c"])  # each item of a list
    path = tmp_path / "r.yaml"
    path.write_text("dtype: f64\n")
    with pytest.raises(ConfigError, match=rf"^{path}: 'dtype' = 'f64': choose one of f16, f32$"):
        parse(Chosen, ["--config", str(path)])
    assert parse(Chosen, ["--side", "left", "--arms", "b,a"]) == Chosen("left", ["b", "a"], None)  # null passes
    check_choices(Chosen())
    with pytest.raises(ConfigError, match=r"^'side' = 'up': choose one of left, right$"):
        check_choices(Chosen(side="up"))  # settings built in code


def test_every_settings_default_is_one_of_its_choices():
    """A default outside its own choices would refuse the command a user runs without the flag."""
    import dataclasses
    import importlib
    import pkgutil
    import sys

    import recipe

    root = Path(recipe.__file__).parents[1]
    sys.path.insert(0, str(root))
    modules = [m.name for m in pkgutil.walk_packages(recipe.__path__, "recipe.")]
    modules += [f"benchmarks.{p.stem}" for p in (root / "benchmarks").glob("*.py")]
    checked = 0
    for name in modules:
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == name):
                continue
            for f in dataclasses.fields(cls):
                if "choices" not in f.metadata:
                    continue
                default = f.default_factory() if f.default is dataclasses.MISSING else f.default
                values = default if isinstance(default, list) else [default]
                assert all(v in f.metadata["choices"] or v in (None, "") for v in values), (name, f.name, default)
                checked += 1
    assert checked >= 20, checked  # the train, eval, synthesis, mining and benchmark settings among them
