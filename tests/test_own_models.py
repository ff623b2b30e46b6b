"""A user's own teacher and student in the miniature: a Hub repo of GGUF files (from the local
Hugging Face cache here, as offline use reads it), a .gguf file, a server already running, a local
student folder or a Hub id; and every bad name one line before anything is written."""

from __future__ import annotations

import importlib

import pytest

from recipe.errors import InputError
from recipe.synth import local_teacher


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An offline Hugging Face cache the test fills by hand, laid out as huggingface_hub writes it."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def put(repo: str, *files: str) -> None:
        folder = cache / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text("a" * 40)
        for name in files:
            path = folder / "snapshots" / ("a" * 40) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"GGUF" + name.encode())

    return put


def test_a_hub_repo_of_one_gguf_file_resolves_to_it_from_the_cache(hub_cache):
    hub_cache("someone/tiny-llm-GGUF", "tiny-llm.Q4_K_M.gguf", "README.md")
    path, name = local_teacher.resolve("someone/tiny-llm-GGUF")
    assert path.read_bytes() == b"GGUFtiny-llm.Q4_K_M.gguf" and name == "tiny-llm.Q4_K_M"
    path, _ = local_teacher.resolve("someone/tiny-llm-GGUF/tiny-llm.Q4_K_M.gguf")
    assert path.name == "tiny-llm.Q4_K_M.gguf"


def test_a_repo_of_several_ggufs_names_them_and_the_form_that_picks_one(hub_cache):
    hub_cache("someone/multi-GGUF", "m.Q4_K_M.gguf", "m.Q8_0.gguf", "big-00001-of-00002.gguf", "big-00002-of-00002.gguf")
    with pytest.raises(InputError) as e:
        local_teacher.resolve("someone/multi-GGUF", "--teacher-model")
    text = str(e.value)
    assert text.startswith("--teacher-model someone/multi-GGUF: the repo holds 3 .gguf models")
    assert "big-00001-of-00002.gguf" in text and "big-00002" not in text
    assert "name one: --teacher-model someone/multi-GGUF/big-00001-of-00002.gguf" in text


def test_a_split_model_comes_whole_and_a_missing_part_is_one_line(hub_cache):
    hub_cache("someone/split-GGUF", "s-00001-of-00002.gguf", "s-00002-of-00002.gguf")
    path, _ = local_teacher.resolve("someone/split-GGUF/s-00001-of-00002.gguf")
    assert (path.parent / "s-00002-of-00002.gguf").is_file()
    hub_cache("someone/half-GGUF", "h-00001-of-00002.gguf")
    with pytest.raises(InputError, match=r"^--model someone/half-GGUF/h-00001-of-00002.gguf: not in the local "
                                         r"Hugging Face cache and the Hub cannot be reached"):
        local_teacher.resolve("someone/half-GGUF/h-00001-of-00002.gguf")


@pytest.mark.parametrize("model, message", [
    ("nobody/never-GGUF", "--model nobody/never-GGUF: not in the local Hugging Face cache"),
    ("missing.gguf", "--model missing.gguf: not a .gguf file (no such file)"),
    ("qwen2.5-coder", "--model 'qwen2.5-coder': neither a local model"),
    ("someone/repo/weights.bin", "nor a Hub repo of GGUF files (owner/repo or owner/repo/file.gguf)"),
])
def test_a_teacher_that_is_nowhere_is_one_line(hub_cache, model, message):
    with pytest.raises(InputError) as e:
        local_teacher.resolve(model)
    assert str(e.value).startswith(f"--model {model}") or str(e.value).startswith(f"--model {model!r}")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_running_server_is_checked_for_the_model_it_serves(teacher):
    local_teacher.check_server(teacher.base_url, "fake")
    with pytest.raises(InputError, match=r"^--teacher-model gpt-4o: the server at .* serves fake; name one of them$"):
        local_teacher.check_server(teacher.base_url, "gpt-4o", model_flag="--teacher-model")
    with pytest.raises(InputError, match=r"answered HTTP 404; give the server's OpenAI-compatible base URL"):
        local_teacher.check_server(teacher.base_url.removesuffix("/v1") + "/nothing", "fake")


def test_no_server_at_the_url_is_one_line():
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        with pytest.raises(InputError, match=r"^--teacher-url http://127.0.0.1:\d+/v1: no OpenAI-compatible server "
                                             r"answers there .*; start it, or leave the flag out"):
            local_teacher.check_server(url, "fake")


@pytest.fixture(scope="module")
def miniature():
    return importlib.import_module("benchmarks.miniature")


@pytest.mark.parametrize("flags, message", [
    (["--student", "smollm2-135m-instruc"], "--student smollm2-135m-instruc: no such model file or folder; "
                                            "did you mean smollm2-135m-instruct"),
    (["--student", "nobody/no-such-student"], "--student nobody/no-such-student: not a local folder, not in the "
                                              "local Hugging Face cache"),
    (["--teacher-model", "nobody/never-GGUF"], "--teacher-model nobody/never-GGUF: not in the local Hugging Face cache"),
    (["--teacher-model", "qwen-0.5b"], "--teacher-model 'qwen-0.5b': neither a local model"),
])
def test_the_miniature_refuses_a_bad_student_or_teacher_before_writing_anything(miniature, hub_cache, tmp_path,
                                                                                 capsys, flags, message):
    work = tmp_path / "work"
    assert miniature.main(["--output-dir", str(work), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err
    assert not work.exists()


def test_the_miniature_checks_the_server_and_its_model_before_writing_anything(miniature, teacher, tmp_path, capsys):
    work = tmp_path / "work"
    assert miniature.main(["--output-dir", str(work), "--teacher-url", teacher.base_url,
                           "--teacher-model", "qwen2.5-coder-0.5b-instruct"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: --teacher-model qwen2.5-coder-0.5b-instruct: the server at {teacher.base_url} serves "
                   "fake; name one of them")
    assert not work.exists()


def test_the_curve_refuses_a_bad_student_before_writing_anything(hub_cache, tmp_path, capsys):
    curve = importlib.import_module("benchmarks.curve")
    work = tmp_path / "work"
    assert curve.main(["--output-dir", str(work), "--student", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --student {tmp_path / 'no-model'}: no such model file or folder"
    assert not work.exists()
