"""Cards, the README.md of a repository on the Hub (YAML the Hub reads, then Markdown): rendered
from the Markdown templates shipped in the package (recipe/templates/) by huggingface_hub's card
classes, which fill them with Jinja2. The dataset card is recipe/data/card.py's, the model card
recipe/train/export.py's."""

from __future__ import annotations

from importlib import resources

TEMPLATES = "templates"  # a folder of the package, listed in pyproject.toml's package data


def template(name: str) -> str:
    return resources.files(__package__).joinpath(TEMPLATES, name).read_text(encoding="utf-8")


def render(card_class, name: str, card_data, /, **values) -> str:
    """The template `name` filled with `card_data` (the YAML, also readable by the text) and
    `values`. A value the template reads and the caller left out is refused: Jinja2 would render
    it as nothing, and a card would silently lose a number."""
    import jinja2
    from jinja2 import meta

    text = template(name)
    wanted = meta.find_undeclared_variables(jinja2.Environment().parse(text))
    missing = wanted - set(values) - set(card_data.to_dict()) - {"card_data"}
    if missing:
        raise ValueError(f"{TEMPLATES}/{name} reads {', '.join(sorted(missing))}, which the card was not given")
    return str(card_class.from_template(card_data, template_str=text, **values))
