"""Reading and writing files the way every command must: errors that name the file and line,
and outputs that appear whole or not at all.

Reading: `jsonl(path)` yields (line number, object) of a UTF-8 JSONL file; a bad byte or a bad
line raises InputError naming the file, the line and the byte offset. It is the one JSONL
reader of the project (records, BEIR corpus and queries, side files of a synthesis folder);
`qrels(path)` is the one reader of relevance judgements (BEIR's qrels/<split>.tsv).

Writing: `atomic_file(target)` gives a temporary path beside `target` and renames it onto the
target only when the block ends without an error, so an interrupted or failed command never
leaves a truncated file where a good one was; `atomic_dir` does the same for a folder, and
`write_jsonl_together` for files that only mean something together (a kill between their
renames leaves a journal by which the next run knows its half: `half_written`).
`check_output_file` refuses to replace what the user owns (an existing file without --overwrite,
one of the command's own inputs) before any work is done; `check_output_dir` is the one rule for
an output folder, the same for every command and benchmark: usable when absent, empty, or made by
this tool, whose marker (`mark_output_dir`) lists each file it finished there with its digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import InputError
from .lock import LOCK_NAME


def lines(path: str | Path, error: type[InputError] = InputError) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file; `error` names the line and byte of a bad byte."""
    path = Path(path)
    offset = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(f"{path}:{lineno}: not UTF-8 text (byte {offset + e.start} of the file: "
                                 f"{raw[e.start:e.start + 1]!r})") from None
            if lineno == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
            offset += len(raw)
            yield lineno, text


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file; InputError names the byte offset of a bad byte."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})") from None


def jsonl(path: str | Path, error: type[InputError] = InputError) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSONL file; bad lines raise `error`."""
    for lineno, line in lines(path, error):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{path}:{lineno}: not valid JSON ({e.msg}, column {e.colno})") from None


def qrels(path: str | Path, error: type[InputError] = InputError) -> Iterator[tuple[int, str, str, int]]:
    """(line number, query id, corpus id, score) of a BEIR qrels file: tab-separated
    `query-id corpus-id score`, an optional header row, and TREC's 4-column form
    (`query-id 0 corpus-id score`) read by taking the last two columns."""
    for lineno, line in lines(path, error):
        cols = line.rstrip("\r\n").split("\t")
        if not line.strip():
            continue
        try:
            score = int(float(cols[-1]))
        except ValueError:
            if lineno == 1:
                continue  # a header row ("query-id corpus-id score")
            raise error(f"{path}:{lineno}: the score {cols[-1]!r} is not a number") from None
        if len(cols) < 3:
            raise error(f"{path}:{lineno}: want 'query-id<TAB>corpus-id<TAB>score'")
        yield lineno, cols[0], cols[-2], score


def _temporary(target: Path) -> Path:
    # hidden, beside the target, with its suffix kept (writers such as matplotlib go by it)
    return target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """A temporary path beside `target` (same folder, so the rename is atomic); on success it
    replaces `target`, on any error (Ctrl-C included) it is removed and `target` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target)
    _remove(tmp)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


def write_text(target: str | Path, text: str) -> None:
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl(records: Iterable[dict], target: str | Path) -> int:
    """Write records as UTF-8 JSONL under a temporary name, renamed into place when all are written."""
    n = 0
    with atomic_file(target) as tmp, tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pair_journal(targets: list[Path]) -> Path:
    return targets[0].with_name(f".{targets[0].name}.pair.json")


def write_jsonl_together(outputs: list[tuple[Iterable[dict], str | Path]]) -> list[int]:
    """Write several JSONL files that mean something only together (filter_pairs' kept and removed
    records): all are written under temporary names first, then renamed into place one after the
    other. A kill between two renames leaves a journal naming each file and its digest, so the
    next run knows the half it finds as its own (`half_written`) and may replace it."""
    targets = [Path(t) for _, t in outputs]
    tmps = [_temporary(t) for t in targets]
    counts = []
    try:
        for (records, _), tmp in zip(outputs, tmps):
            tmp.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w", encoding="utf-8") as f:
                n = 0
                for rec in records:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    n += 1
            counts.append(n)
        journal = _pair_journal(targets)
        write_text(journal, json.dumps({"files": {str(t): _sha256(tmp) for t, tmp in zip(targets, tmps)}}) + "\n")
        for tmp, target in zip(tmps, targets):
            os.replace(tmp, target)
        journal.unlink()
    except BaseException:
        for tmp in tmps:
            _remove(tmp)
        raise
    return counts


def half_written(targets: list[str | Path]) -> set[Path]:
    """The targets of an interrupted `write_jsonl_together` that are still as it wrote them
    (a file changed since is the user's, and is not in the set)."""
    targets = [Path(t) for t in targets]
    journal = _pair_journal(targets)
    try:
        listed = json.loads(read_text(journal)).get("files", {})
    except (OSError, ValueError, AttributeError, InputError):
        return set()
    return {t for t in targets if t.is_file() and listed.get(str(t)) == _sha256(t)}


@contextmanager
def atomic_dir(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """A new temporary folder beside `target`, renamed to `target` when the block succeeds.

    An existing `target` is replaced only with `overwrite` (the caller has checked that it may):
    it is moved aside first and deleted only once the new folder is in place."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise InputError(f"{target}: already exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target)
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        _remove(old)
    except BaseException:
        _remove(tmp)
        raise


def same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def inside(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies under it (after resolving links)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


# names that promise another format than the JSONL the record commands write
OTHER_FORMATS = (".parquet", ".csv", ".tsv", ".arrow")


def check_output_file(output: str | Path, inputs: Iterable[str | Path] = (), overwrite: bool = False,
                      flag: str = "--output", jsonl: bool = False) -> Path:
    """Refuse an output that would replace one of the inputs or land inside an input folder, or
    an existing file without `overwrite`; check its folder can be written. Call before any work.
    `jsonl`: the command writes JSONL, so a name ending like another format is refused too."""
    if not str(output):
        raise InputError(f"command line: {flag} is required")
    output = Path(output)
    if jsonl and output.suffix.lower() in OTHER_FORMATS:
        raise InputError(f"{flag} {output}: this command writes JSONL, not {output.suffix.lower()[1:]}; "
                         f"name it {output.with_suffix('.jsonl').name}")
    for source in inputs:
        if same_file(output, source) or (Path(source).is_dir() and inside(output, source)):
            raise InputError(f"{flag} {output}: is one of the inputs ({source}) or inside it; write to another path")
    if output.is_dir():
        raise InputError(f"{flag} {output}: is a folder; give a file path")
    if output.exists() and not overwrite:
        raise InputError(f"{flag} {output}: already exists; pass --overwrite to replace it")
    check_writable_dir(output.parent, flag)
    return output


def check_writable_dir(folder: str | Path, flag: str = "--output-dir") -> Path:
    """Prove a file can be written in `folder`, before any work is done, and leave nothing: the
    folders it creates to try are removed again (the run creates them when it writes), so that a
    run refused after this check has changed nothing."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise InputError(f"{flag} {folder}: cannot write there ({e.strerror or e})") from None
    finally:
        for path in created:  # innermost first
            try:
                path.rmdir()
            except OSError:
                break
    return folder


# the one marker: left in an output folder by the tool that made it, naming the tool and each file
# it finished there with its digest (see `check_output_dir`)
MARKER = ".e5-output.json"


def check_output_dir(folder: str | Path, tool: str, *, inputs: Iterable[str | Path] = (),
                     replaces: Iterable[str | Path] | None = None, overwrite: bool | None = None,
                     flag: str = "--output-dir") -> Path:
    """The one rule for an output folder, checked before any work: it is usable when it is absent,
    empty, or made by `tool` (it holds `tool`'s marker, `mark_output_dir`). In a folder of its own,
    what this run replaces (`replaces`: paths in the folder; None: everything in it, the folder
    being replaced whole) must be what the marker lists, each file with its digest unchanged (a
    file edited since is the user's; so is a folder none of the listed files lies in), unless the
    user passed `overwrite` (None: the tool has no --overwrite). Anything else is refused with
    one line naming the paths; a folder that overlaps an input is refused too."""
    if not str(folder):  # before Path(), which reads "" as "."
        raise InputError(f"command line: {flag} is required")
    folder = Path(folder)
    for source in inputs:
        if inside(folder, source) or inside(source, folder):
            raise InputError(f"{flag} {folder}: overlaps the input {source}; write to another folder")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {folder}: is a file; give a folder")
    if folder.is_dir():
        listed = _read_marker(folder, tool)
        if listed is None:
            present = _contents(folder)
            if present:
                raise InputError(f"{flag} {folder}: not empty ({_some(_relative(folder, present))}) and not made "
                                 f"by {tool}; choose a new or empty folder")
        paths = _contents(folder) if replaces is None else [folder / p for p in replaces if (folder / p).exists()]
        foreign = _unvouched(folder, paths, listed or {})
        if foreign and not overwrite:
            raise InputError(f"{flag} {folder}: {_some(foreign)} not written by {tool}; move them away"
                             f"{', pass --overwrite to replace them,' if overwrite is not None else ''} "
                             "or choose another folder")
    check_writable_dir(folder.parent, flag)
    return folder


def mark_output_dir(folder: str | Path, tool: str, written: Iterable[str | Path] = ()) -> None:
    """Make `folder` `tool`'s (create it and its marker), and record the digests of the files
    `written` (paths in it) as they are now: call it before the first write into the folder, and
    again once files are finished."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    listed = _read_marker(folder, tool) or {}
    listed.update({str(name): _sha256(folder / name) for name in written})
    write_text(folder / MARKER, json.dumps({"written_by": tool, "files": dict(sorted(listed.items()))},
                                           indent=1) + "\n")


def _read_marker(folder: Path, tool: str) -> dict[str, str] | None:
    """The files `tool`'s marker in `folder` lists, with their digests; None where there is no
    marker of `tool`'s (none, another tool's, or one that cannot be read: it vouches for nothing)."""
    try:
        data = json.loads(read_text(folder / MARKER))
    except (OSError, ValueError, InputError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != tool or not isinstance(data.get("files"), dict):
        return None
    return {k: v for k, v in data["files"].items() if isinstance(k, str) and isinstance(v, str)}


def _unvouched(folder: Path, paths: Iterable[Path], listed: dict[str, str]) -> list[str]:
    """Of `paths` under `folder`, those the marker's `listed` files and digests do not vouch for:
    a file not listed or changed since, a folder that holds none of the listed files."""
    parents = {str(parent) for name in listed for parent in Path(name).parents}
    foreign = []
    for path in sorted(paths):
        rel = str(path.relative_to(folder))
        if path.is_dir() and not path.is_symlink():
            if rel not in parents:
                foreign.append(rel + "/")
        elif rel not in listed:
            foreign.append(rel)
        elif not path.is_file() or _sha256(path) != listed[rel]:
            foreign.append(f"{rel} (changed since)")
    return foreign


def _contents(folder: Path) -> list[Path]:
    """What a folder holds, less its marker and its lock (no content of the folder)."""
    return [p for p in folder.rglob("*") if p.parent != folder or p.name not in (MARKER, LOCK_NAME)]


def _relative(folder: Path, paths: Iterable[Path]) -> list[str]:
    return [str(p.relative_to(folder)) + ("/" if p.is_dir() and not p.is_symlink() else "") for p in sorted(paths)]


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
