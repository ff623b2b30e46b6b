"""Fidelity to the paper: templates verbatim, placeholder sets, the 93 languages and their mix."""

import hashlib
import string
from pathlib import Path

import pytest

from recipe.synth import placeholders as P
from recipe.synth.prompts import PROMPT_DIR, fields, render, template

TEMPLATES = sorted(p.name for p in PROMPT_DIR.glob("*.txt"))
STEPS = [(g, "brainstorm") for g in P.BRAINSTORM_GROUPS] + [(g, "generate") for g in P.GROUPS]
# sha256 of the paper's appendix C templates, carried with the tests (source: its README), so
# that every clone checks every template against the paper
PAPER_SHA256 = {name: digest for digest, name in (
    line.split() for line in (Path(__file__).parent / "data" / "paper_prompts" / "SHA256SUMS").read_text().splitlines())}


def test_ten_templates_one_per_step():
    assert len(TEMPLATES) == 10 and len(STEPS) == 10
    assert sorted(PAPER_SHA256) == TEMPLATES  # no template without the paper's counterpart


@pytest.mark.parametrize("name", sorted(PAPER_SHA256))
def test_template_is_byte_identical_to_the_paper(name):
    ours = (PROMPT_DIR / name).read_bytes()
    assert hashlib.sha256(ours).hexdigest() == PAPER_SHA256[name], f"{name} differs from the paper's text"


def _values(group, step, pick=0):
    vals = {}
    for name in fields(group, step):
        if name == "task":
            vals[name] = "Retrieve recipes for a dish named in the query."
        elif name in ("language", "src_lang"):
            vals[name] = "English"
        elif name == "tgt_lang":
            vals[name] = "Swahili"
        else:
            options = P.SETS[group][name]
            vals[name] = options[pick % len(options)]
    return vals


@pytest.mark.parametrize("group,step", STEPS)
def test_render_fills_every_placeholder_of_the_file(group, step):
    vals = _values(group, step)
    text = render(group, step, vals)
    expected = (PROMPT_DIR / f"{group.replace('-', '_')}_{step}.txt").read_text().rstrip("\n")
    for name, value in vals.items():
        expected = expected.replace("{" + name + "}", value)
    assert text == expected
    assert "{" not in text and "}" not in text
    # each placeholder the paper's file names has a value set (or is the task / a language)
    names = {f for _, f, _, _ in string.Formatter().parse(template(group, step)) if f}
    assert names == set(vals)


def test_brainstorm_only_for_asymmetric_groups():
    assert set(P.BRAINSTORM_GROUPS) == {"short-long", "long-short", "short-short", "long-long"}
    with pytest.raises(ValueError, match="no brainstorm step"):
        render("sts", "brainstorm", {})


@pytest.mark.parametrize("bad,match", [
    ({"unit": ""}, "is empty"),
    ({"low_score": "3"}, "not in the paper's set"),  # the STS set, not bitext's
    ({"tgt_lang": "English"}, "must differ"),
    ({"src_lang": "Klingon"}, "not in the paper's set"),
])
def test_render_refuses_out_of_set_values(bad, match):
    vals = {**_values("bitext", "generate"), **bad}
    with pytest.raises(ValueError, match=match):
        render("bitext", "generate", vals)


def test_render_refuses_missing_placeholder():
    vals = _values("long-short", "generate")
    del vals["num_words"]
    with pytest.raises(ValueError, match="missing"):
        render("long-short", "generate", vals)


def test_placeholder_sets_are_the_papers():
    assert P.SETS["short-long"]["query_length"] == ("less than 5 words", "5 to 15 words", "at least 10 words")
    assert P.SETS["short-long"]["num_words"] == ("50", "100", "200", "300", "400", "500")
    assert P.SETS["long-short"]["num_words"] == (
        "less than 10", "at least 10", "at least 50", "at least 100", "at least 200")
    assert P.SETS["sts"]["low_score"] == ("2.5", "3", "3.5")
    assert P.SETS["bitext"]["low_score"] == ("1.5", "2", "2.5")
    assert P.SETS["bitext"]["high_score"] == P.SETS["sts"]["high_score"] == ("4", "4.5", "5")
    assert P.SETS["sts"]["difficulty"] == ("elementary school", "high school", "college")
    assert P.SETS["short-long"]["difficulty"] == ("high school", "college", "PhD")


def test_93_languages_with_the_papers_mix():
    langs = P.LANGUAGES
    assert len(P.XLMR_100) == 100 and len(set(P.XLMR_100)) == 100
    assert len(langs) == 93 and len(set(langs)) == 93
    assert "Bulgarian" in langs and langs.count("Burmese") == 1 and "Chinese" in langs
    assert not any("Romanized" in lang or "(" in lang for lang in langs)
    mix = P.PAPER_LANGUAGE_MIX
    assert sum(mix.values()) == pytest.approx(100.0)
    assert mix["English"] == 43.1 and mix["Polish"] == 3.0 and mix["Arabic"] == 2.7
    others = [v for k, v in mix.items() if v < 2.7]
    assert len(others) == 79 and sum(others) == pytest.approx(19.8)


def test_group_mix_is_the_papers_500k():
    assert P.PAPER_GROUP_MIX == {"short-long": 167, "long-short": 122, "short-short": 13,
                                 "long-long": 17, "sts": 99, "bitext": 89}
