"""The paper's placeholder sets, its 93 languages with their realised mix, and its group shares.

Sources (the paper, section 3.1 and appendix C): the captions of the paper's Tables 8-13 for the
value sets, Figure 2 for the language mix, section 3.1 for the group sizes. Every value a prompt
is rendered with comes from here, and `recipe.synth.prompts.render` refuses anything else.
"""

from __future__ import annotations

from ..schema import TASK_GROUPS as GROUPS  # noqa: F401 (defined with the record, used by settings.py)

# Asymmetric groups brainstorm their task definitions first; STS and bitext have fixed ones.
BRAINSTORM_GROUPS = ("short-long", "long-short", "short-short", "long-long")
FIXED_INSTRUCTIONS = {
    "sts": "Retrieve semantically similar text.",
    "bitext": "Retrieve parallel sentences.",
}

# Examples per group in the paper's final 500k (thousands): the default group mix.
PAPER_GROUP_MIX = {
    "short-long": 167.0,
    "long-short": 122.0,
    "short-short": 13.0,
    "long-long": 17.0,
    "sts": 99.0,
    "bitext": 89.0,
}

# 150k unique instructions over the 319k asymmetric examples: each brainstormed task serves ~2.1.
PAPER_EXAMPLES_PER_TASK = round(319 / 150, 2)

DIFFICULTY = ("high school", "college", "PhD")
CLARITY = ("clear", "understandable with some effort", "ambiguous")
SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "short-long": {
        "query_type": ("extremely long-tail", "long-tail", "common"),
        # Table 8's set; section 3.1's text says "5-10 words": the table wins.
        "query_length": ("less than 5 words", "5 to 15 words", "at least 10 words"),
        "clarity": CLARITY,
        "num_words": ("50", "100", "200", "300", "400", "500"),
        "difficulty": DIFFICULTY,
    },
    "long-short": {
        "num_words": ("less than 10", "at least 10", "at least 50", "at least 100", "at least 200"),
        "clarity": CLARITY,
        "difficulty": DIFFICULTY,
    },
    "short-short": {},
    "long-long": {},
    "sts": {
        "unit": ("sentence", "phrase", "passage"),
        "high_score": ("4", "4.5", "5"),
        "low_score": ("2.5", "3", "3.5"),
        "difficulty": ("elementary school", "high school", "college"),
    },
    "bitext": {
        "unit": ("sentence", "phrase", "passage"),
        "high_score": ("4", "4.5", "5"),
        "low_score": ("1.5", "2", "2.5"),  # not the STS set: a known slip of public re-implementations
        "difficulty": ("elementary school", "high school", "college"),
    },
}

# The 100 entries of the XLM-R (CC-100) list, folded to 93 languages: the five romanized
# scripts, Burmese (Zawgyi) and Chinese (Traditional) join their language (our reading; the paper
# says 93 without the list).
XLMR_100 = (
    "Afrikaans", "Amharic", "Arabic", "Assamese", "Azerbaijani", "Belarusian", "Bulgarian",
    "Bengali", "Bengali Romanized", "Breton", "Bosnian", "Catalan", "Czech", "Welsh", "Danish",
    "German", "Greek", "English", "Esperanto", "Spanish", "Estonian", "Basque", "Persian",
    "Finnish", "French", "Western Frisian", "Irish", "Scottish Gaelic", "Galician", "Gujarati",
    "Hausa", "Hebrew", "Hindi", "Hindi Romanized", "Croatian", "Hungarian", "Armenian",
    "Indonesian", "Icelandic", "Italian", "Japanese", "Javanese", "Georgian", "Kazakh", "Khmer",
    "Kannada", "Korean", "Kurdish", "Kyrgyz", "Latin", "Lao", "Lithuanian", "Latvian", "Malagasy",
    "Macedonian", "Malayalam", "Mongolian", "Marathi", "Malay", "Burmese", "Burmese (Zawgyi)",
    "Nepali", "Dutch", "Norwegian", "Oromo", "Oriya", "Punjabi", "Polish", "Pashto", "Portuguese",
    "Romanian", "Russian", "Sanskrit", "Sindhi", "Sinhala", "Slovak", "Slovenian", "Somali",
    "Albanian", "Serbian", "Sundanese", "Swedish", "Swahili", "Tamil", "Tamil Romanized", "Telugu",
    "Telugu Romanized", "Thai", "Filipino", "Turkish", "Uyghur", "Ukrainian", "Urdu",
    "Urdu Romanized", "Uzbek", "Vietnamese", "Xhosa", "Yiddish", "Chinese (Simplified)",
    "Chinese (Traditional)",
)
_FOLD = {
    "Bengali Romanized": None, "Hindi Romanized": None, "Tamil Romanized": None,
    "Telugu Romanized": None, "Urdu Romanized": None, "Burmese (Zawgyi)": None,
    "Chinese (Traditional)": None, "Chinese (Simplified)": "Chinese",
}
LANGUAGES: tuple[str, ...] = tuple(
    _FOLD.get(name, name) for name in XLMR_100 if _FOLD.get(name, name) is not None
)

# Figure 2 of the paper, in percent; the remaining languages share what is left equally.
_NAMED_SHARES = {
    "English": 43.1, "Polish": 3.0,
    "Japanese": 2.9, "Italian": 2.9, "Russian": 2.9, "Indonesian": 2.9, "German": 2.9, "Persian": 2.9,
    "Spanish": 2.8, "Chinese": 2.8, "French": 2.8, "Portuguese": 2.8, "Dutch": 2.8,
    "Arabic": 2.7,
}
_OTHER_SHARE = 100.0 - sum(_NAMED_SHARES.values())  # 19.8 over the other 79
PAPER_LANGUAGE_MIX: dict[str, float] = {
    lang: _NAMED_SHARES.get(lang, _OTHER_SHARE / (len(LANGUAGES) - len(_NAMED_SHARES)))
    for lang in LANGUAGES
}
