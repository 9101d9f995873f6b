"""What the deployment gateway costs per request: routing, PII redaction and a committed log row.

The same instant backend is called twice over in-process HTTP (httpx's ASGI transport, the openai client):
once by its served name (no deployment: nothing logged) and once through a deployment (split, redaction,
group-committed SQLite row before each answer). The difference per request is the gateway's cost.
Everything runs on loopback; each run is bounded by the request count.

    .venv/bin/python bench/deploy_log.py --requests 2000 --concurrency 1 16
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deploy"))

from fake_backend import VariantsBackend  # noqa: E402

from tunewise.deploy.gateway import DeploymentGateway  # noqa: E402
from tunewise.deploy.state import create_deployment  # noqa: E402
from tunewise.serve.api import create_app  # noqa: E402
from tunewise.store import Store  # noqa: E402

TEXT = "Hello, I am Jane Doe (jane.doe@example.com, +1 415 555 0132); my refund for order 4417 has not arrived yet, can you check?"


async def measure(app, model: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
            client = openai.AsyncOpenAI(base_url="http://bench/v1", api_key="x", http_client=http, max_retries=0)
            latencies: list[float] = []
            per_client = requests // concurrency

            async def one(k: int) -> None:
                for i in range(per_client):
                    t0 = time.perf_counter()
                    await client.chat.completions.create(model=model, messages=[{"role": "user", "content": TEXT}], user=f"u{k}-{i % 7}")
                    latencies.append(time.perf_counter() - t0)

            started = time.perf_counter()
            await asyncio.gather(*(one(k) for k in range(concurrency)))
            return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'store.db'}")
        created = create_deployment("bench", baseline="served:base", candidates=["served:cand"], share=10, store=store)
        print("| clients | requests | plain p50 ms | deployment p50 ms | plain req/s | deployment req/s | overhead per request (ms) | commits |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for concurrency in args.concurrency:
            plain_wall, plain = asyncio.run(measure(create_app([VariantsBackend()]), "base", args.requests, concurrency))
            gateway = DeploymentGateway.open("bench", store=store)
            app = create_app([VariantsBackend()], deployments=[gateway])
            deployed_wall, deployed = asyncio.run(measure(app, "bench", args.requests, concurrency))
            n = len(deployed)
            overhead = (deployed_wall - plain_wall) / n * 1000
            print(f"| {concurrency} | {n} | {statistics.median(plain) * 1000:.2f} | {statistics.median(deployed) * 1000:.2f} | "
                  f"{len(plain) / plain_wall:.0f} | {n / deployed_wall:.0f} | {overhead:.2f} | {gateway.writer.commits} |")
        rows = store.request_logs(created.record.id)
        print(f"\nrows logged: {len(rows)}; PII found per row: {rows[0].pii_found}; email in the log: "
              f"{any('jane.doe@example.com' in str(r.messages) for r in rows)}")
        store.close()


if __name__ == "__main__":
    main()
