"""The shared recipe loader: YAML then `--key value`, unknown keys named, types checked."""

from dataclasses import dataclass, field

import pytest

from recipe.config import ConfigError, parse


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
