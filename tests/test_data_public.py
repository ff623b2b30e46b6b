"""Each public-set loader on a local fixture in its Hub copy's real schema: the paper's
instruction (Table 14) and sample ratio, training splits only, valid records out."""

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, IterableDatasetDict, List, Value

from recipe.data import public
from recipe.data.records import validate

FIXTURES = Path(__file__).parent / "data" / "public"
# the paper's Table 14 instructions and appendix A ratios, restated here on purpose
TABLE_14 = {
    "eli5": "Provided a user question, retrieve the highest voted answers on Reddit ELI5 forum",
    "hotpotqa": "Given a multi-hop question, retrieve documents that can help answer the question",
    "fever": "Given a claim, retrieve documents that support or refute the claim",
    "nli": "Given a premise, retrieve a hypothesis that is entailed by the premise",
    "msmarco-passage": "Given a web search query, retrieve relevant passages that answer the query",
    "msmarco-document": "Given a web search query, retrieve relevant documents that answer the query",
    "quora": "Given a question, retrieve questions that are semantically equivalent to the given question",
    **{n: "Given a question, retrieve Wikipedia passages that answer the question"
       for n in ("miracl", "mrtydi", "nq", "squad", "triviaqa")},
    **{n: "Given a Chinese search query, retrieve web passages that answer the question" for n in ("dureader", "t2ranking")},
}
RATIOS = {"eli5": 0.1, "msmarco-passage": 0.5, "msmarco-document": 0.2, "quora": 0.1, "t2ranking": 0.5}

# (query, positive, negative) each loader must make of its fixture, typed out from the fixture
# files by hand, not from the column registry in recipe/data/public.py: a loader that swaps the
# positive and the negative, or reads the wrong column, fails here. Pair sets have no negative
# (mined later); the BEIR join (fever) pairs each claim with "title text" of its judged article.
EXPECTED = {
    "dureader": [
        ("手机怎么截屏",
         "大多数安卓手机可以同时按住电源键和音量下键来截屏。",
         "手机电池续航时间与屏幕亮度有关。"),
        ("北京到上海高铁多长时间",
         "北京到上海的高铁最快约4小时18分钟。",
         "上海是中国最大的城市之一。"),
    ],
    "eli5": [
        ("Why does ice float on water?",
         "Water expands when it freezes because its molecules lock into a hexagonal lattice that holds them further apart, so ice is less dense than liquid water and floats.",
         None),
        ("How do noise cancelling headphones work?",
         "A microphone picks up outside sound and the headphones play the same wave inverted, so the two cancel each other out before they reach your ear.",
         None),
        ("Why do we get goosebumps?",
         "Tiny muscles at the base of each hair contract, a leftover reflex that made fur stand up to trap heat or look bigger.",
         None),
    ],
    "fever": [
        ("Nikolaj Coster-Waldau worked with the Fox Broadcasting Company.",
         "Nikolaj Coster-Waldau Nikolaj William Coster-Waldau (born 27 July 1970) is a Danish actor and producer. He worked with the Fox Broadcasting Company.",
         None),
        ("Roman Atwood is a content creator.",
         "Roman Atwood Roman Bernard Atwood (born May 28, 1983) is an American YouTube personality and prankster.",
         None),
        ("History of art includes architecture, dance, sculpture, music, painting, poetry literature, theatre, narrative, film, photography and graphic arts.",
         "History of art The history of art focuses on objects made by humans in visual form for aesthetic purposes.",
         None),
        ("Adrienne Bailon is an accountant.",
         "Adrienne Bailon Adrienne Eliza Houghton (née Bailon; born October 24, 1983) is an American singer-songwriter, recording artist, actress, dancer and television personality.",
         None),
    ],
    "hotpotqa": [
        ("Which magazine was started first Arthur's Magazine or First for Women?",
         "Arthur's Magazine Arthur's Magazine (1844–1846) was an American literary periodical published in Philadelphia in the 19th century.",
         "First Things First Things is an ecumenical and conservative religious journal founded in 1990."),
        ("The Oberoi family is part of a hotel company that has a head office in what city?",
         "The Oberoi Group The Oberoi Group is a hotel company with its head office in Delhi.",
         "Taj Hotels Taj Hotels Resorts and Palaces is a chain of luxury hotels headquartered in Mumbai."),
        ("Musician and satirist Allie Goertz wrote a song about the \"The Simpsons\" character Milhouse, who Matt Groening named after who?",
         "Milhouse Van Houten Milhouse Mussolini Van Houten is a recurring character in the animated television series \"The Simpsons\"; Groening named him after U.S. president Richard Nixon, whose middle name was Milhous.",
         "Allie Goertz Allison Beth \"Allie\" Goertz is an American musician and satirist."),
    ],
    "miracl": [
        ("ما هي عاصمة مصر؟",
         "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
         "الإسكندرية مدينة ساحلية في شمال مصر."),
        ("متى تأسست جامعة الأزهر؟",
         "تأسس الجامع الأزهر سنة 970 ميلادية في القاهرة.",
         "جامعة القاهرة هي جامعة حكومية تأسست عام 1908."),
        ("Mlima Kilimanjaro uko nchi gani?",
         "Kilimanjaro ni mlima mrefu kuliko yote barani Afrika, uko nchini Tanzania.",
         "Mlima Kenya ni mlima mrefu kuliko yote nchini Kenya."),
    ],
    "mrtydi": [
        ("বাংলাদেশের রাজধানী কোথায়?",
         "ঢাকা বাংলাদেশের রাজধানী ও বৃহত্তম শহর।",
         "চট্টগ্রাম বাংলাদেশের প্রধান সমুদ্রবন্দর।"),
        ("富士山の高さは？",
         "富士山は標高3776メートルで、日本最高峰の山である。",
         "北岳は日本で二番目に高い山である。"),
    ],
    "msmarco-document": [
        ("what is the daily life of thai people",  # a row's hard negatives are all kept, in order
         "Thai culture and daily life: most Thai people live in rural villages and work in agriculture; family and Buddhism shape the day.",
         ("Thailand travel guide: the best beaches and islands to visit in 2019.", "Thai cooking class in Chiang Mai.")),
        ("cost of a tummy tuck",
         "How much does a tummy tuck cost? The average cost of abdominoplasty is $6,253 according to 2017 statistics.",
         "Tummy tuck recovery: what to expect week by week."),
    ],
    "msmarco-passage": [
        ("what is rba",
         "Since 2007, the RBA's outstanding reputation has been affected by the 'Securency' or NPA scandal.",
         "The Rural Business Alliance (RBA) is a network of rural business owners."),
        ("was ronald reagan a democrat",
         "Ronald Reagan was a Democrat until 1962, when he switched to the Republican Party.",
         "Ronald Reagan's first wife was actress Jane Wyman."),
        ("how long do you need for sydney and surrounding areas",
         "Sydney is a big city; allow at least three or four days to see the main sights and the Blue Mountains.",
         "Sydney Airport is located 8 km south of the city centre."),
    ],
    "nli": [
        ("A person on a horse jumps over a broken down airplane.",
         "A person is outdoors, on a horse.",
         "A person is at a diner, ordering an omelette."),
        ("Children smiling and waving at camera",
         "There are children present",
         "The kids are frowning"),
    ],
    "nq": [
        ("when did richmond last play in a preliminary final",
         "Richmond Football Club Richmond began 2017 with 5 straight wins and defeated Greater Western Sydney to reach its first Grand Final since 1982.",
         None),
        ("who sang what in the world's come over you",
         "Jack Scott (singer) At the beginning of 1960, Scott again changed record labels, this time to Top Rank Records, and recorded What in the World's Come Over You.",
         None),
    ],
    "quora": [
        ("Astrology: I am a Capricorn Sun Cap moon and cap rising...what does that say about me?",
         "I'm a triple Capricorn (Sun, Moon and ascendant in Capricorn) What does this say about me?",
         "What is the best way to learn astrology?"),
        ("How can I be a good geologist?",
         "What should I do to be a great geologist?",
         "How do I become a geophysicist?"),
    ],
    "squad": [
        ("To whom did the Virgin Mary allegedly appear in 1858 in Lourdes France?",
         "Architecturally, the school has a Catholic character. Behind the Basilica is the Grotto, a replica of the grotto at Lourdes, France where the Virgin Mary reputedly appeared to Saint Bernadette Soubirous in 1858.",
         None),
        ("What is in front of the Notre Dame Main Building?",
         "Immediately in front of the Main Building and facing it, is a copper statue of Christ with arms upraised with the legend \"Venite Ad Me Omnes\".",
         None),
    ],
    "t2ranking": [
        ("感冒了吃什么好",
         "感冒期间宜多喝水，吃清淡易消化的食物，如粥、面条和蔬菜。",
         "流感疫苗每年秋季接种效果最好。"),
        ("如何办理护照",
         "办理护照需携带身份证到户籍所在地出入境管理部门申请。",
         "护照有效期为十年。"),
    ],
    "triviaqa": [
        ("Which American-born Sinclair won the Nobel Prize for Literature in 1930?",
         "Sinclair Lewis Harry Sinclair Lewis was an American novelist; in 1930 he became the first writer from the United States to receive the Nobel Prize in Literature.",
         "Upton Sinclair Upton Beall Sinclair Jr. was an American writer who wrote nearly 100 books."),
        ("Where in England was Dame Judi Dench born?",
         "Judi Dench Dame Judith Olivia Dench was born in Heworth, York, England.",
         "York Minster is the cathedral of York, England."),
    ],
}


class FixtureFetch:
    """Reads tests/data/public/<name>/<config>.<split>.jsonl and remembers what was asked for."""

    def __init__(self, name):
        self.name, self.asked = name, []

    def __call__(self, hub_id, config, split):
        self.asked.append((hub_id, config, split))
        path = FIXTURES / self.name / (f"{config or 'default'}.{split}.jsonl" if split else f"{config}.jsonl")
        return [json.loads(l) for l in path.read_text().strip("\n").split("\n")] if path.is_file() else []


def test_registry_covers_the_papers_13_sets_with_table_14_and_ratios():
    assert set(public.SOURCES) == set(TABLE_14)  # 13 sets; MS MARCO as passage + document
    for name, src in public.SOURCES.items():
        assert src.instruction == TABLE_14[name], name
        assert src.ratio == RATIOS.get(name, 1.0), name
        assert src.split.startswith("train") or src.split == "msmarco_document", name  # training data only
        assert src.loader.__doc__ and src.hub_id.count("/") == 1


@pytest.mark.parametrize("name", sorted(TABLE_14))
def test_loader_maps_the_real_schema_to_records(name):
    fetch = FixtureFetch(name)
    records = list(public.load(name, ratio=1.0, fetch=fetch))
    assert records, f"fixture for {name} produced nothing"
    for rec in records:
        validate(rec, name)
        assert rec["instruction"] == TABLE_14[name] and rec["source"] == name
    assert len({r["id"] for r in records}) == len(records)
    got = [(r["query"], r["positive"], tuple(r["negative"]) if isinstance(r["negative"], list) else r["negative"])
           for r in records]
    assert Counter(got) == Counter(EXPECTED[name])
    # every fixture file was read, and only training splits were asked for
    files = {p.name for p in (FIXTURES / name).glob("*.jsonl")}
    asked = {f"{config or 'default'}.{split}.jsonl" if split else f"{config}.jsonl" for _, config, split in fetch.asked}
    assert files <= asked, files - asked
    assert all(split is None or split.startswith("train") or split == "msmarco_document"
               for _, _, split in fetch.asked), fetch.asked


def test_languages_come_from_the_config_of_multilingual_sets():
    langs = Counter(r["language"] for r in public.load("miracl", fetch=FixtureFetch("miracl")))
    assert langs == {"Arabic": 2, "Swahili": 1}
    assert {r["language"] for r in public.load("mrtydi", fetch=FixtureFetch("mrtydi"))} == {"Bengali", "Japanese"}
    assert {r["language"] for r in public.load("dureader", fetch=FixtureFetch("dureader"))} == {"Chinese"}


def test_sampling_by_ratio_is_deterministic_and_close_to_the_ratio():
    ids = [f"eli5-pair-{i}" for i in range(20000)]
    kept = [i for i in ids if public.in_sample(i, 0.1, seed=0)]
    assert 0.09 < len(kept) / len(ids) < 0.11
    assert kept == [i for i in ids if public.in_sample(i, 0.1, seed=0)]
    assert kept != [i for i in ids if public.in_sample(i, 0.1, seed=1)]
    assert all(public.in_sample(i, 1.0, seed=0) for i in ids[:100])


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown public dataset 'msmarco'; known: eli5, hotpotqa"):
        list(public.load("msmarco"))


# ---------------------------------------------------------------- the Hub copies' real layouts
# Each Hub copy as its dataset card's `dataset_info` block declares it (docs/public_data.md gives
# the card and its revision): config -> split -> features, typed out from the cards, including the
# configs and splits the loaders must not read. A fake `datasets.load_dataset` serves two rows of
# exactly these features and refuses a config or split the card does not have, as the Hub does.
S, N = Value("string"), Value("int64")
TRIPLET = {"anchor": S, "positive": S, "negative": S}
BGE = {"query": S, "pos": List(S), "neg": List(S), "category": S, "type": S, "prompt": S,
       "pos_scores": List(Value("float32")), "neg_scores": List(Value("float32"))}
MIRACL = ("ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")
MRTYDI = ("ar", "bn", "en", "fi", "id", "ja", "ko", "ru", "sw", "te", "th")


def _many(n: int) -> dict:
    return {f"negative_{i}": S for i in range(1, n + 1)}


CARDS = {
    "sentence-transformers/eli5": {"pair": {"train": {"question": S, "answer": S}}},
    "sentence-transformers/hotpotqa": {"triplet": {"train": TRIPLET},
                                       "triplet-20": {"train": {"anchor": S, "positive": S, **_many(20)}},
                                       "triplet-all": {"train": TRIPLET}},
    "mteb/fever": {"corpus": {"corpus": {"_id": S, "title": S, "text": S}},
                   "queries": {"queries": {"_id": S, "text": S}},
                   "default": {s: {"query-id": S, "corpus-id": S, "score": N} for s in ("train", "dev", "test")}},
    "sentence-transformers/miracl": {**{f"{lang}-triplet": {"train": TRIPLET} for lang in MIRACL},
                                     **{f"{lang}-triplet-all": {"train": TRIPLET} for lang in MIRACL}},
    "sentence-transformers/msmarco-msmarco-distilbert-base-tas-b": {
        "triplet": {"train": {"query": S, "positive": S, "negative": S}},
        "triplet-50": {"train": {"query": S, "positive": S, **_many(50)}},
        "triplet-ids": {"train": {"query": N, "positive": N, "negative": N}}},
    "cfli/bge-e5data": {"default": {s: BGE for s in ("msmarco_document", "msmarco_passage", "dureader",
                                                      "t2ranking", "miracl_ar", "nq", "eli5")}},
    "sentence-transformers/natural-questions": {"pair": {"train": {"query": S, "answer": S}}},
    "sentence-transformers/all-nli": {
        "pair": {s: {"anchor": S, "positive": S} for s in ("train", "dev", "test")},
        "pair-class": {s: {"premise": S, "hypothesis": S,
                           "label": ClassLabel(names=["entailment", "neutral", "contradiction"])}
                       for s in ("train", "dev", "test")},
        "pair-score": {s: {"sentence1": S, "sentence2": S, "score": Value("float64")} for s in ("train", "dev", "test")},
        "triplet": {s: TRIPLET for s in ("train", "dev", "test")}},
    "sentence-transformers/squad": {"pair": {"train": {"question": S, "answer": S}}},
    "sentence-transformers/trivia-qa-triplet": {"triplet": {"train": TRIPLET}, "triplet-all": {"train": TRIPLET}},
    "sentence-transformers/quora-duplicates": {
        "pair": {"train": {"anchor": S, "positive": S}},
        "pair-class": {"train": {"sentence1": S, "sentence2": S, "label": ClassLabel(names=["different", "duplicate"])}},
        "triplet": {"train": TRIPLET}, "triplet-all": {"train": TRIPLET}},
    "sentence-transformers/mr-tydi": {**{f"{lang}-triplet": {"train": TRIPLET} for lang in MRTYDI},
                                      **{f"{lang}-triplet-all": {"train": TRIPLET} for lang in MRTYDI}},
    "sentence-transformers/dureader": {"triplet": {"train": TRIPLET}, "triplet-all": {"train": TRIPLET}},
    "sentence-transformers/t2ranking": {"triplet": {"train": TRIPLET},
                                        "triplet-15": {"train": {"anchor": S, "positive": S, **_many(15)}},
                                        "triplet-all": {"train": TRIPLET}},
}


def _value(config: str, column: str, feature, i: int):
    """Row i's value of `column`: a text naming the config and column it came from, so a record
    shows which column each of its fields was read from; BEIR ids that join."""
    if column in ("_id", "id", "query-id", "corpus-id"):
        return f"{'q' if column == 'query-id' or config == 'queries' else 'd'}{i}"
    if isinstance(feature, ClassLabel) or feature == N:
        return 1 if column == "score" else 0
    if isinstance(feature, List):
        return [f"{config}|{column}|{i}"] if column in ("pos", "neg") else []
    if feature == Value("float64"):
        return 0.5
    return f"{config}|{column}|{i}"


def _split(config: str, features: dict):
    rows = [{c: _value(config, c, f, i) for c, f in features.items()} for i in range(2)]
    return Dataset.from_list(rows, features=Features(features)).to_iterable_dataset()


def fake_load_dataset(path, name=None, split=None, streaming=False, **kwargs):
    assert streaming, "public sets are streamed"
    if path not in CARDS:
        raise FileNotFoundError(f"Dataset '{path}' doesn't exist on the Hub")
    configs = CARDS[path]
    name = name or ("default" if "default" in configs else None)
    if name not in configs:
        raise ValueError(f"BuilderConfig '{name}' not found. Available: {sorted(configs)}")
    if split is None:
        return IterableDatasetDict({s: _split(name, f) for s, f in configs[name].items()})
    if split not in configs[name]:
        raise ValueError(f"Bad split: {split}. Available splits: {sorted(configs[name])}")
    return _split(name, configs[name][split])


QUERY_COLUMNS, POSITIVE_COLUMNS, NEGATIVE_COLUMNS = {"anchor", "query", "question"}, {"positive", "answer", "pos"}, {"negative", "neg"}


@pytest.mark.parametrize("name", sorted(TABLE_14))
def test_loader_reads_its_hub_copy_as_the_card_declares_it(name, monkeypatch):
    """Through the real `hub_fetch`: the config, split and columns the registry names exist in
    the card's layout, and every row becomes a record with query, positive (and negative) taken
    from the columns that hold them."""
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    src = public.SOURCES[name]
    records = list(public.load(name, ratio=1.0))
    assert len(records) == 2 * len(src.configs), (name, len(records))
    for rec in records:
        validate(rec, name)
        if src.loader is public.from_beir:  # the claim, and "title text" of the document its qrel judges
            i = rec["query"].removeprefix("queries|text|")
            assert rec["positive"] == f"corpus|title|{i} corpus|text|{i}" and rec["negative"] is None
            continue
        config, query_column, i = rec["query"].split("|")
        assert query_column in QUERY_COLUMNS
        assert rec["positive"].split("|")[:2] in ([config, c] for c in POSITIVE_COLUMNS)
        negative = rec["negative"]
        if isinstance(negative, list):
            negative = negative[0]
        assert negative is None or negative.split("|")[1] in NEGATIVE_COLUMNS
        assert rec["positive"].endswith(f"|{i}") and (negative is None or negative.endswith(f"|{i}"))


def test_fever_reads_mteb_2_layout_with_id_columns(monkeypatch):
    """mteb 2 re-uploads name the corpus and query id `id`, not BEIR's `_id` (its own loader reads
    both): FEVER's records are the same either way."""
    import datasets

    cards = {**CARDS, "mteb/fever": {**CARDS["mteb/fever"], "corpus": {"corpus": {"id": S, "title": S, "text": S}},
                                     "queries": {"queries": {"id": S, "text": S}}}}
    monkeypatch.setattr(sys.modules[__name__], "CARDS", cards)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    records = list(public.load("fever", ratio=1.0))
    assert [(r["query"], r["positive"]) for r in records] == [
        (f"queries|text|{i}", f"corpus|title|{i} corpus|text|{i}") for i in range(2)]


def _doc_table() -> dict[str, dict]:
    """docs/public_data.md's table, by set: the layout the evidence was recorded for."""
    doc = (Path(__file__).parents[1] / "docs" / "public_data.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in public.SOURCES:
            rows[cells[0]] = dict(zip(("hub_id", "config", "split", "columns", "checked"), cells[1:]))
    langs = {m[1]: m[2].split(", ") for m in re.finditer(r"(\w+) ((?:[a-z]{2}, )+[a-z]{2}) \(\d+\)", doc)}
    return rows, langs


def test_the_evidence_page_names_what_the_registry_reads():
    rows, langs = _doc_table()
    assert set(rows) == set(public.SOURCES)
    for name, src in public.SOURCES.items():
        row = rows[name]
        assert row["hub_id"] == src.hub_id and row["split"] == src.split, name
        if src.loader is public.from_beir:
            assert row["config"] == "`corpus`, `queries`, `default`", name
            continue
        if src.language == "by-config":
            assert tuple(f"{lang}-triplet" for lang in langs[name]) == src.configs and row["config"] == "`{lang}-triplet`"
        else:
            assert row["config"] == ("(default)" if src.configs == (None,) else f"`{src.configs[0]}`"), name
        if src.columns:
            assert row["columns"] == ", ".join(src.columns), name
        assert row["checked"] in ("card", "partly"), name
