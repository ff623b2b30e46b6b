"""The mutation table (tests/mutations.py) stays true to the code it mutates: every target text
occurs exactly once in the checkout and every test it names exists, so a change that moves a
target fails here, in CI, instead of leaving the table to rot. Running the mutations took 16
minutes on 2 cores (docs/benchmarks.md, "Mutation testing"), so that is not done in CI."""

import pytest

from tests import mutations

# these six passed every test before the tests were strengthened (docs/benchmarks.md, "Mutation
# testing"); they stay in the table
FIRST_SURVIVORS = {"train-temperature-1", "train-no-hard-negatives", "batch-resume-asks-saved-jobs",
                   "dedup-keys-not-rebuilt-on-reopen", "public-hotpotqa-columns-swapped", "prompt-word-changed"}


def test_every_target_occurs_once_and_every_named_test_exists():
    assert mutations.problems(mutations.ROOT) == []
    assert FIRST_SURVIVORS <= {m.name for m in mutations.MUTATIONS}
    assert len(mutations.MUTATIONS) >= len(FIRST_SURVIVORS) + 10


def test_a_target_found_twice_or_not_at_all_is_refused(tmp_path):
    (tmp_path / "f.py").write_text("x = 1\nx = 1\n")
    twice = mutations.Mutation("twice", "f.py", "x = 1", "x = 2", "tests/test_f.py::test_f")
    absent = mutations.Mutation("absent", "f.py", "y = 1", "y = 2", "tests/test_f.py::test_f")
    for m, count in ((twice, 2), (absent, 0)):
        with pytest.raises(mutations.TableError, match=f"occurs {count} times in f.py"):
            mutations.apply(tmp_path, m)
    assert (tmp_path / "f.py").read_text() == "x = 1\nx = 1\n"
    assert mutations.problems(tmp_path, [twice, absent, twice]) == [
        "twice: name used twice",
        "twice: its target text occurs 2 times in f.py, not once", "twice: no test file tests/test_f.py",
        "absent: its target text occurs 0 times in f.py, not once", "absent: no test file tests/test_f.py",
        "twice: its target text occurs 2 times in f.py, not once", "twice: no test file tests/test_f.py"]


def test_a_mutation_changes_the_copy_and_never_the_checkout(tmp_path):
    m = mutations.MUTATIONS[0]
    before = (mutations.ROOT / m.file).read_text()
    copy = mutations.copy_project(tmp_path / "copy")
    assert (copy / "tests" / "mutations.py").is_file() and not (copy / ".git").exists()
    mutations.apply(copy, m)
    assert (copy / m.file).read_text() == before.replace(m.old, m.new) != before
    assert (mutations.ROOT / m.file).read_text() == before
