"""The completion cache answers for one grader and runs no code.

Two local servers fitted differently never share an answer, the same server on another port is still itself, a dead
port with a warm cache pins nothing, a planted pickle is a miss that runs nothing, an older harness's pickled cache
keeps answering as data, and a read-only cache is read, never renamed. Servers are real, on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from harness.cli.app import app
from harness.grading.cache import CompletionCache, request_key
from harness.grading.cache_disk import RefusedEntry, plain_data
from harness.grading.grade import GradeSpec, grade
from harness.io.pairs import load_pairs, write_pairs
from harness.io.runs import read_labels
from harness.serve.config import ServeConfig
from harness.serve.runner import start_server
from harness.workflows.embedded import free_port
from tests.helpers import (
    SAFE_VERDICT,
    SAMPLE,
    assert_no_traceback,
    completion_body,
    endpoint_for,
    one_pair,
    stats,
)

PROMPTS = GradeSpec(targets=("prompt",))


def _pairs(tmp_path: Path, n: int, name: str = "d.jsonl") -> Path:
    """``n`` pairs of the sample, each prompt made distinct (one request per item)."""
    frame = load_pairs(SAMPLE).head(n).copy()
    frame["prompt"] = [f"{text} (#{i})" for i, text in enumerate(frame["prompt"])]
    return write_pairs(frame, tmp_path / name)


def _manifest(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "manifest.json").read_text()))


# one identity per grader ---------------------------------------------------------------------------------------------

def test_two_local_servers_fitted_differently_share_no_answer(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A server fitted on inverted labels is asked for every item, never answered from the other's cache."""
    monkeypatch.setenv("HARNESS_FIT_CACHE", str(tmp_path / "fits"))
    inverted = load_pairs(SAMPLE)
    for column in [c for c in inverted.columns if c.startswith(("prompt_", "response_")) and c != "prompt_id"]:
        inverted[column] = 3 - inverted[column]
    other = start_server(str(write_pairs(inverted, tmp_path / "inverted.jsonl")))
    try:
        data = _pairs(tmp_path, 40)
        first = grade(data, PROMPTS, endpoint_for(server), run_dir=tmp_path / "a", cache_dir=tmp_path / "cache")
        assert first.manifest.last_session.requests_sent == 40
        before = stats(other)["completions"]
        second = grade(data, PROMPTS, endpoint_for(other), run_dir=tmp_path / "b", cache_dir=tmp_path / "cache")
        assert second.manifest["cache_hits"] == 0 and stats(other)["completions"] == before + 40
        assert second.manifest["endpoint"] == other.endpoint.identity != first.manifest["endpoint"]
        verdicts = [{r["id"]: r["severity"] for r in read_labels(tmp_path / run)} for run in ("a", "b")]
        assert verdicts[0] != verdicts[1]  # they are two graders, and each run holds its own's verdicts
    finally:
        other.stop()


def test_the_same_server_on_another_port_is_still_itself(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Restarted on another port, a harness serve answers from the cache and resumes its folders without
    ``--same-grader``; the key never holds the port."""
    data = _pairs(tmp_path, 6)
    before = start_server(str(SAMPLE))
    grade(data, PROMPTS, endpoint_for(before), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    before.stop()  # and started again: a new port
    after = make_server()
    assert after.port != before.port and after.endpoint.identity == before.endpoint.identity
    again = grade(data, PROMPTS, endpoint_for(after), run_dir=tmp_path / "again", cache_dir=tmp_path / "cache")
    assert again.manifest["cache_hits"] == 6 and stats(after)["completions"] == 0
    both = grade(data, GradeSpec(targets=("prompt", "response")), endpoint_for(after), run_dir=tmp_path / "run",
                 cache_dir=tmp_path / "cache")  # the same folder, resumed at the new port: the responses graded
    assert both.graded_now == 6 and both.manifest["counts"]["ok"] == 12
    assert both.manifest["endpoints"] == [after.endpoint.identity]
    assert both.manifest["replicas"] == [after.base_url]


def test_a_remote_endpoint_keeps_its_key(server) -> None:  # type: ignore[no-untyped-def]
    """Caches of remote endpoints keep hitting: the key is what it always was (the public URL, hashed with the
    request's fields), and a local endpoint's key holds its port or its fingerprint."""
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0,
        "seed": 1,
        "max_tokens": 9,
    }
    material = {
        "base_url": "https://api.example.com/v1",
        "model": "m",
        "messages": request["messages"],
        "temperature": 0,
        "seed": 1,
        "max_tokens": 9,
        "top_p": None,
        "response_format": None,
    }
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert (
        request_key("https://user:pw@api.example.com/v1/?k=1", request)
        == hashlib.sha256(canonical.encode()).hexdigest()
    )
    keys = {request_key(url, request) for url in ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1")}
    assert len(keys) == 2 and request_key(server.endpoint.identity, request) not in keys


def test_a_dead_port_with_a_warm_cache_does_not_finish_and_pins_nothing(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _pairs(tmp_path, 4)
    cache = str(tmp_path / "cache")
    warm = cli.invoke(app, ["grade", str(data), "--target", "prompt", "--base-url", server.base_url, "--out",
                               str(tmp_path / "warm"), "--cache-dir", cache, "-q"])
    assert warm.exit_code == 0, warm.output
    dead = f"http://127.0.0.1:{free_port()}/v1"
    run = tmp_path / "run"
    stopped = cli.invoke(app, ["grade", str(data), "--target", "prompt", "--base-url", dead, "--out", str(run),
                                  "--cache-dir", cache, "-q"])
    assert stopped.exit_code == 1 and f"cannot reach {dead}" in stopped.output
    if run.exists():  # what it left names the dead port as tried, never as an endpoint the run may resume at
        left = _manifest(run)
        assert left["status"] == "failed" and left["endpoints"] == [] and left.get("cache_hits", 0) == 0
    fixed = cli.invoke(app, ["grade", str(data), "--target", "prompt", "--base-url", server.base_url, "--out", str(run),
                                "--cache-dir", cache, "-q"])
    assert fixed.exit_code == 0, fixed.output
    manifest = _manifest(run)
    assert manifest["cache_hits"] == 4 and manifest["endpoints"] == [server.endpoint.identity]


def test_a_run_answered_wholly_from_the_cache_at_a_gone_server_pins_nothing(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Another kind of local server (no fingerprint: known by its URL) answered once and is gone; a grade there is
    answered from the cache, and the folder stays free for the corrected command."""
    from aiohttp import web

    from tests.helpers import Scripted

    verdict = {k: {"raw_0_7": 0, "severity_0_3": 0} for k in ("H", "S", "V", "SH")}
    answer = {"choices": [{"message": {"content": json.dumps(verdict)}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 5}, "model": "harness-baseline"}
    other = Scripted(lambda body: web.json_response(answer))
    data = _pairs(tmp_path, 3)
    grade(data, PROMPTS, endpoint_for(other), run_dir=tmp_path / "warm", cache_dir=tmp_path / "cache")  # type: ignore[arg-type]
    other.stop()
    cached = grade(data, PROMPTS, endpoint_for(other), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")  # type: ignore[arg-type]
    assert cached.manifest["cache_hits"] == 3 and cached.manifest["endpoint"] == other.base_url
    assert cached.manifest["endpoints"] == []  # it never answered this run: nothing pinned
    fixed = grade(data, GradeSpec(targets=("prompt", "response")), endpoint_for(server), run_dir=tmp_path / "run",
                  cache_dir=tmp_path / "cache")
    assert fixed.graded_now == 3 and fixed.manifest["endpoints"] == [server.endpoint.identity]


def test_an_older_harness_run_at_harness_serve_resumes_at_the_same_port(
    cli: CliRunner, server, make_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A folder an older harness recorded by URL is resumed at that URL (a harness serve on the default port after an
    upgrade), and refused at another grader."""
    data = _pairs(tmp_path, 3)
    run = tmp_path / "run"
    grade(data, PROMPTS, endpoint_for(server), run_dir=run)
    manifest = _manifest(run)
    manifest.update(endpoint=server.base_url, endpoints=[server.base_url])  # as an older harness wrote it
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / ".harness-owned.json").unlink()  # an older harness kept no record of its files
    refused = cli.invoke(
        app, ["grade", str(data), "--base-url", make_server(gullible=True).base_url, "--out", str(run)]
    )
    assert refused.exit_code == 2 and f"was graded at {server.base_url}" in refused.output
    resumed = grade(data, GradeSpec(targets=("prompt", "response")), endpoint_for(server), run_dir=run)
    assert resumed.graded_now == 3 and resumed.manifest["endpoints"] == [server.base_url, server.endpoint.identity]


def test_the_embedded_servers_identity_is_computed_by_its_starter(tmp_path: Path) -> None:
    """The process that starts harness serve knows its fingerprint without asking it; the server publishes the same."""
    import urllib.request

    from harness.workflows.embedded import embedded_endpoint

    with embedded_endpoint(["harness-baseline"], wait=False) as started:
        with urllib.request.urlopen(started.url.removesuffix("/v1") + "/health", timeout=10) as response:
            published = json.loads(response.read())["identity"]
        assert started.identity == published and published.startswith("harness-serve:")
        started.ready()  # checks it again, and would refuse a server that says it is another
    gullible = start_server(str(SAMPLE), ServeConfig(gullible=True))
    try:
        assert gullible.endpoint.identity not in (None, published)
    finally:
        gullible.stop()


@pytest.mark.slow
def test_an_embedded_run_resumes_at_the_next_embedded_server(cli: CliRunner, tmp_path: Path) -> None:
    """Each ``--base-url embedded`` grade starts its own server on a free port; the second resumes the first's folder
    (no ``--same-grader``) and is answered from its cache."""
    data = _pairs(tmp_path, 3)
    command = ["grade", str(data), "--base-url", "embedded", "--out", str(tmp_path / "run"), "--cache-dir",
               str(tmp_path / "cache"), "-q"]
    first = cli.invoke(app, [*command, "--target", "prompt"])
    assert first.exit_code == 0, first.output
    second = cli.invoke(app, [*command, "--target", "both"])
    assert second.exit_code == 0, second.output
    manifest = _manifest(tmp_path / "run")
    assert manifest["counts"]["ok"] == 6 and manifest["sessions"] == 2
    assert manifest["endpoints"] == [manifest["endpoint"]] and manifest["endpoint"].startswith("harness-serve:")
    again = cli.invoke(app, [*command[:4], "--out", str(tmp_path / "again"), *command[6:], "--target", "both"])
    assert again.exit_code == 0 and _manifest(tmp_path / "again")["cache_hits"] == 6


# data, never objects ------------------------------------------------------------------------------------------------

class _Planted:
    """Unpickling this creates a file: what an attacker would plant in a cache row."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _warm(server: Any, tmp_path: Path, n: int = 3) -> tuple[Path, list[str]]:
    data = _pairs(tmp_path, n)
    grade(data, PROMPTS, endpoint_for(server), run_dir=tmp_path / "warm", cache_dir=tmp_path / "cache")
    return data, [r["request_hash"] for r in read_labels(tmp_path / "warm")]


def test_a_planted_pickle_never_runs_and_is_a_miss_with_a_note(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import diskcache

    data, keys = _warm(server, tmp_path)
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(tmp_path / "cache")) as plain:  # diskcache's own pickling, as an attacker would use it
        plain.set(keys[0], _Planted(str(marker)))
    sent = stats(server)["completions"]
    result = cli.invoke(
        app,
        [
            "grade",
            str(data),
            "--target",
            "prompt",
            "--base-url",
            server.base_url,
            "--out",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "-q",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert not marker.exists()  # the pickle was never run
    manifest = _manifest(tmp_path / "run")
    assert manifest["cache_hits"] == 2 and stats(server)["completions"] == sent + 1  # a miss: asked again
    note = " ".join(manifest["cache_notes"])
    assert "1 cache entries were read as misses and never run" in note and "not plain data" in note
    assert "never run" in " ".join(result.output.split())
    again = grade(data, PROMPTS, endpoint_for(server), run_dir=tmp_path / "again", cache_dir=tmp_path / "cache")
    assert again.manifest["cache_hits"] == 3 and not again.manifest.get("cache_notes")  # the answer stored as data


def test_a_tampered_row_is_a_miss_and_never_reaches_outside_the_cache(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Rows changed by hand: a value file named outside the cache (neither read nor deleted), an answer moved to
    another key, text that is not JSON, a completion whose counts are not numbers. Each is a miss with a note."""
    data, keys = _warm(server, tmp_path, n=4)
    victim = tmp_path / "victim.txt"
    victim.write_text('{"v": 1}')
    database = sqlite3.connect(tmp_path / "cache" / "cache.db")
    with database:
        value = database.execute("SELECT value FROM Cache WHERE key = ?", (keys[1],)).fetchone()[0]
        database.execute(
            "UPDATE Cache SET mode = 2, filename = '../victim.txt', value = NULL WHERE key = ?", (keys[0],)
        )
        database.execute("UPDATE Cache SET value = ? WHERE key = ?", (value, keys[2]))  # key 1's answer under key 2
        entry = json.loads(bytes(value))
        entry.update(key=keys[3])
        entry["completion"]["prompt_tokens"] = "many"
        database.execute("UPDATE Cache SET value = ? WHERE key = ?", (json.dumps(entry).encode(), keys[3]))
    database.close()
    result = grade(data, PROMPTS, endpoint_for(server), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert result.manifest["cache_hits"] == 1 and result.manifest["counts"]["ok"] == 4
    assert "3 cache entries were read as misses and never run" in " ".join(result.manifest["cache_notes"])
    assert victim.read_text() == '{"v": 1}'  # never deleted through a row that named it
    sqlite3.connect(tmp_path / "cache" / "cache.db").execute(
        "UPDATE Cache SET value = CAST('not json' AS BLOB) WHERE key = ?", (keys[0],)).connection.commit()
    again = grade(data, PROMPTS, endpoint_for(server), run_dir=tmp_path / "again", cache_dir=tmp_path / "cache")
    assert again.manifest["cache_hits"] == 3 and "(first: not JSON)" in " ".join(again.manifest["cache_notes"])


def test_an_older_harness_pickled_cache_keeps_answering_as_data(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An entry an older harness wrote (a pickled dict) is read by walking the pickle as data: a hit, stored again
    as JSON; no request is sent."""
    import diskcache

    data, keys = _warm(server, tmp_path)
    cache = CompletionCache(tmp_path / "cache")
    completions = {key: cache.get(key) for key in keys}
    cache.close()
    assert all(completions.values())
    with diskcache.Cache(str(tmp_path / "cache")) as older:  # as an older harness stored them: pickled
        for key, completion in completions.items():
            older.set(key, completion)
    modes = sqlite3.connect(tmp_path / "cache" / "cache.db").execute("SELECT DISTINCT mode FROM Cache").fetchall()
    assert modes == [(4,)]  # pickles
    sent = stats(server)["completions"]
    result = grade(data, PROMPTS, endpoint_for(server), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert result.manifest["cache_hits"] == 3 and stats(server)["completions"] == sent
    assert not result.manifest.get("cache_notes")
    rows = sqlite3.connect(tmp_path / "cache" / "cache.db").execute("SELECT mode, value FROM Cache").fetchall()
    assert {mode for mode, _ in rows} == {1} and all(bytes(v).startswith(b'{"v":1,') for _, v in rows)  # JSON now


def test_a_large_answer_is_kept_in_a_value_file_and_read_back(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "cache")
    completion = {"content": "x" * 100_000, "finish_reason": "length", "prompt_tokens": 3, "completion_tokens": 9000}
    cache.put("k", completion)
    cache.close()
    assert [p.suffix for p in (tmp_path / "cache").rglob("*.val")] == [".val"]  # over diskcache's 32 KB: a file
    again = CompletionCache(tmp_path / "cache")
    assert again.get("k") == completion and again.get("other") is None and not again.notes
    again.close()


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(value=_plain, protocol=st.integers(2, 5))
def test_plain_data_reads_every_pickle_of_plain_data(value: Any, protocol: int) -> None:
    assert plain_data(pickle.dumps(value, protocol=protocol)) == value


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=200))
def test_plain_data_refuses_what_it_cannot_read_and_nothing_else(blob: bytes) -> None:
    try:
        plain_data(blob)
    except RefusedEntry:
        pass


@pytest.mark.parametrize("value", [_Planted("x"), len, {1, 2}, b"\x00" * 3, Path("p")])
def test_plain_data_refuses_objects(value: Any) -> None:
    with pytest.raises(RefusedEntry, match="not plain data"):
        plain_data(pickle.dumps(value, protocol=4))


def test_plain_data_refuses_shared_and_circular_containers() -> None:
    shared: list[int] = [1]
    circular: list[Any] = []
    circular.append(circular)
    for value in ({"a": shared, "b": shared}, circular):
        with pytest.raises(RefusedEntry, match="shared container"):
            plain_data(pickle.dumps(value, protocol=5))


# a read-only cache --------------------------------------------------------------------------------------------------

@contextmanager
def _read_only(folder: Path) -> Iterator[bool]:
    """Make ``folder`` and its files read-only; yields whether this process is now unable to write them. As root a
    chmod does not stop writes: then the immutable attribute (chattr +i) is used, undone afterwards; where neither
    works, the caller skips only its no-write assertions."""
    paths = [folder, *folder.rglob("*")]
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None and subprocess.run(
        ["chattr", "+i", *map(str, paths)], capture_output=True).returncode == 0
    if not immutable:
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
            probe.unlink()
            enforced = False
        except OSError:
            enforced = True
        yield enforced
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_read_only_cache_is_read_without_writing_and_never_renamed(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _warm(server, tmp_path)
    more = _pairs(tmp_path, 5, name="more.jsonl")  # the 3 warm items and 2 new ones
    before = _snapshot(tmp_path / "cache")
    with _read_only(tmp_path / "cache") as enforced:
        result = cli.invoke(app, ["grade", str(more), "--target", "prompt", "--base-url", server.base_url, "--out",
                                     str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "-q"])
        after = _snapshot(tmp_path / "cache")
    assert result.exit_code == 0, result.output
    manifest = _manifest(tmp_path / "run")
    assert manifest["cache_hits"] == 3 and manifest["counts"]["ok"] == 5
    assert not list(tmp_path.glob("cache.broken-*")) and (tmp_path / "cache" / "cache.db").exists()
    if enforced:  # the process could not write the folder: the notes say so, and not a byte changed
        assert any("cache not writable; read only" in note for note in manifest["cache_notes"])
        assert after == before
    else:  # pragma: no cover - root without chattr: the permissions do not stop it, so it is a writable cache
        assert after.keys() >= before.keys()
    retried = grade(more, PROMPTS, endpoint_for(server), run_dir=tmp_path / "again", cache_dir=tmp_path / "cache")
    assert retried.manifest["cache_hits"] == (5 if not enforced else 3)  # the new answers were kept only if writable


def test_an_empty_answer_is_never_cached(scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    server = scripted(lambda body: web.Response(body=completion_body("  "), content_type="application/json"))
    for attempt in range(2):
        grade(
            one_pair(tmp_path),
            GradeSpec(targets=("prompt",)),
            endpoint_for(server),
            run_dir=tmp_path / f"run{attempt}",
            cache_dir=tmp_path / "cache",
        )
        assert read_labels(tmp_path / f"run{attempt}")[0]["status"] == "unparsed"
    assert server.requests == 2  # a blank answer is more likely a fault on the way: asked again, not memorised


def test_samples_and_logprobs_are_part_of_the_cache_key(scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A request asking for 3 samples, or for logprobs, is another request than the plain one: never answered with the
    plain one's single sample or missing probabilities."""
    from aiohttp import web

    seen: list[dict[str, Any]] = []

    def answer(body: dict[str, Any]) -> web.Response:
        seen.append(body)
        return web.Response(body=completion_body(json.dumps(SAFE_VERDICT)), content_type="application/json")

    server = scripted(answer)
    warm = {"targets": ("prompt",), "temperature": 0.7, "seed": 1}  # the same sampling settings in every request
    for k, spec in enumerate((GradeSpec(**warm), GradeSpec(**warm, samples=3), GradeSpec(**warm, logprobs=True),
                              GradeSpec(**warm))):
        grade(
            one_pair(tmp_path), spec, endpoint_for(server), run_dir=tmp_path / f"run{k}", cache_dir=tmp_path / "cache"
        )
    assert server.requests == 3  # the last, plain again, came from the cache
    assert [b.get("n") for b in seen] == [None, 3, None] and [bool(b.get("logprobs")) for b in seen] == [
        False,
        False,
        True,
    ]
    assert read_labels(tmp_path / "run3")[0]["cached"] is True


def test_retry_forgets_the_several_item_answer_that_left_items_out(scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With --items-per-request, an answer missing rows is cached like any other; the items it left out are graded
    singly and their records name it, so --retry unparsed forgets it too and asks the endpoint the whole way again."""
    from aiohttp import web

    server = scripted(lambda body: web.Response(body=completion_body('{"items": []}'), content_type="application/json"))
    data = write_pairs(
        pd.DataFrame([{"id": "a", "prompt": "first"}, {"id": "b", "prompt": "second"}]), tmp_path / "d.jsonl"
    )
    spec = GradeSpec(targets=("prompt",), items_per_request=2)
    grade(data, spec, endpoint_for(server, concurrency=1), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    records = read_labels(tmp_path / "run")
    assert [r["status"] for r in records] == [
        "unparsed",
        "unparsed",
    ] and server.requests == 3  # the pair, then each alone
    assert len({r["after_request_hash"] for r in records}) == 1
    grade(data, spec, endpoint_for(server, concurrency=1), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache",
          retry_statuses=("unparsed",))
    assert server.requests == 6  # the several-item request was asked again, not read back from the cache


def test_a_garbage_cache_is_moved_aside_and_the_run_completes(cli: CliRunner, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cache.db").write_bytes(b"this is not a sqlite database" * 100)
    data = write_pairs(load_pairs(SAMPLE).head(4), tmp_path / "d.jsonl")
    result = cli.invoke(app, ["grade", str(data), "--base-url", server.base_url, "--out", str(tmp_path / "run"),
                                 "--cache-dir", str(cache)], env={"COLUMNS": "200"})
    assert_no_traceback(result)
    assert result.exit_code == 0 and "was unreadable" in result.output and "moved it to" in result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["ok"] == 8 and manifest["cache_notes"]
    assert list(tmp_path.glob("cache.broken-*"))


def test_request_key_holds_what_changes_the_answer_and_nothing_else() -> None:
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.0,
        "seed": 1,
        "max_tokens": 9,
    }
    key = request_key("http://h:1/v1", request)
    assert request_key("http://user:secret@h:1/v1/?q=1", request) == key  # credentials and query are not identity
    assert request_key("http://h:1/v1", {**request, "stream": False, "timeout": 3}) == key  # transport details
    for change in ({"model": "n"}, {"temperature": 0.5}, {"seed": 2}, {"max_tokens": 10},
                   {"messages": [{"role": "user", "content": "y"}]}, {"response_format": {"type": "json_object"}}):
        assert request_key("http://h:1/v1", {**request, **change}) != key, change
    assert request_key("http://other:1/v1", request) != key
