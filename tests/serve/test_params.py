"""What a chat request may hold, checked as OpenAI checks it: the log-probability parameters."""

from __future__ import annotations

import json
import urllib.request


def test_serve_checks_logprob_parameters(server) -> None:  # type: ignore[no-untyped-def]
    def post(body: dict[str, object]) -> tuple[int, str]:
        request = urllib.request.Request(f"{server.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    base = {"model": "harness-baseline", "messages": [{"role": "user", "content": "hello"}]}
    assert post({**base, "top_logprobs": 3})[0] == 400
    status, text = post({**base, "logprobs": True, "top_logprobs": 30})
    assert status == 400 and "top_logprobs" in text
    assert post({**base, "n": 0})[0] == 400
    status, text = post({**base, "logprobs": True, "top_logprobs": 2})
    tokens = json.loads(text)["choices"][0]["logprobs"]["content"]
    assert status == 200 and "".join(t["token"] for t in tokens) == json.loads(text)["choices"][0]["message"]["content"]
