"""The clean-checkout guard of conftest.py: it blames a test for what the test writes, never for
what a user's run writes into the checkout's out/ at the same time."""

from pathlib import Path

from tests import conftest


def test_a_users_run_in_the_checkout_is_not_a_tests_doing_and_a_tests_default_output_is(tmp_path):
    root = conftest.RUN_ROOT
    assert root is not None and Path.cwd() == root and root != conftest.ROOT
    assert (root / "recipe" / "configs" / "smoke.yaml").is_file()  # the checkout's files, read as before
    before = conftest.output_snapshot(root)
    users = conftest.ROOT / "out" / "a-users-run-during-the-tests"
    existed = users.parent.exists()
    users.mkdir(parents=True)
    try:
        (users / ".lock").write_text("process 1 (eval.py)\n")
        assert conftest.output_snapshot(root) == before  # the user's run: nothing of the tests'
    finally:
        (users / ".lock").unlink()
        users.rmdir()
        if not existed:
            users.parent.rmdir()
    # what a command writes without --output-dir lands in the tests' own root, where the guard looks
    default = Path("out") / "eval-by-default"
    default.mkdir(parents=True)
    try:
        assert conftest.added(before, conftest.output_snapshot(root)) == [f"{root / 'out'}/eval-by-default"]
    finally:
        default.rmdir()
        if not any(Path("out").iterdir()):
            Path("out").rmdir()
