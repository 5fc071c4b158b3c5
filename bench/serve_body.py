"""What one large request costs the other requests of ``harness serve``: ``/health`` latency while a big text is graded.

Starts the embedded endpoint in this process, posts one chat request whose user message is SIZE megabytes of
text (default 10), and meanwhile asks ``/health`` every 50 ms; prints how long the big request took and the
median and largest ``/health`` latency during it. Run as ``python bench/serve_body.py [SIZE_MB]``. (Before the
server read and graded large bodies off its event loop, ``/health`` waited for the whole grading: 16 s at 10 MB
on 2 shared cores.)
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import urllib.request


def main(size_mb: float = 10.0) -> dict[str, float]:
    from harness.io.sample import sample_path
    from harness.serve.runner import start_server

    handle = start_server(str(sample_path()))
    root = handle.base_url.removesuffix("/v1")
    text = "violent " * int(size_mb * 2**20 / 8)
    body = json.dumps({"model": "harness-baseline", "messages": [{"role": "user", "content": text}]}).encode()
    latencies: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            start = time.perf_counter()
            with urllib.request.urlopen(root + "/health", timeout=600) as response:
                response.read()
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    start = time.perf_counter()
    request = urllib.request.Request(handle.base_url + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        status = response.status
    took = time.perf_counter() - start
    done.set()
    poller.join()
    handle.stop()
    return {"status": status, "body_mb": len(body) / 2**20, "request_s": took, "health_answers": len(latencies),
            "health_median_ms": 1000 * statistics.median(latencies), "health_max_ms": 1000 * max(latencies)}


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0), indent=1))
