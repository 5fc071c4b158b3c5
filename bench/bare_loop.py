"""The baseline of ``make bench``: a bare ``AsyncOpenAI`` loop, as a process of its own.

It imports only the openai SDK, reads the requests ``bench/run.py`` rendered (the very requests
``harness grade`` sends: same model, messages and sampling fields) and sends them with 64 in
flight through ``chat.completions.create``. Run as ``python bench/bare_loop.py PORT REQUESTS.json
[--httpx]``; prints items/s of the sending alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def main(port: int, path: str, aiohttp: bool, concurrency: int = 64) -> float:
    import openai

    with open(path, encoding="utf-8") as handle:
        requests = json.load(handle)

    async def run() -> float:
        http = openai.DefaultAioHttpClient() if aiohttp else None
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1",
            api_key="x",
            max_retries=0,
            http_client=http,
        )
        semaphore = asyncio.Semaphore(concurrency)

        async def one(request: dict) -> None:
            async with semaphore:
                await client.chat.completions.create(**request)

        start = time.perf_counter()
        await asyncio.gather(*(one(r) for r in requests))
        elapsed = time.perf_counter() - start
        await client.close()
        return len(requests) / elapsed

    return asyncio.run(run())


if __name__ == "__main__":
    print(main(int(sys.argv[1]), sys.argv[2], aiohttp="--httpx" not in sys.argv))
