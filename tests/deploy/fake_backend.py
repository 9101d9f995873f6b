"""A backend for deployment tests: names answer at their own speed, and some fail on purpose.

Run as a script it serves a deployment over real HTTP (the SIGKILL durability test starts it as a process):
    python fake_backend.py STORE_URL DEPLOYMENT PORT_FILE
"""

from __future__ import annotations

import asyncio
import sys

from tunewise.serve import protocol
from tunewise.serve.backend import Backend, ModelCard
from tunewise.serve.protocol import APIError


class VariantsBackend(Backend):
    """`complete` answers "<name>: <last user message>"; `delays` per name in seconds; `failing` names raise."""

    name = "variants"

    def __init__(self, names=("base", "cand"), *, delays: dict[str, float] | None = None, failing: tuple[str, ...] = ()):
        self.cards = {n: ModelCard(n, "base") for n in names}
        self.delays, self.failing = dict(delays or {}), set(failing)
        self.calls: list[str] = []

    def models(self):
        return list(self.cards.values())

    def _answer(self, req) -> str:
        self.calls.append(req.model)
        if req.model in self.failing:
            raise APIError(500, f"{req.model} is broken on purpose")
        last = [m.text() for m in req.messages if m.role == "user"][-1]
        return f"{req.model}: {last}"

    async def complete(self, req):
        await asyncio.sleep(self.delays.get(req.model, 0.0))
        text = self._answer(req)
        return protocol.completion(req.model, [(text, "stop")], len(text.split()), len(text.split()))

    async def stream(self, req):
        text = self._answer(req)
        cid = protocol.completion_id()
        yield protocol.chunk(cid, req.model, delta={"role": "assistant", "content": ""})
        for k, word in enumerate(text.split()):
            await asyncio.sleep(self.delays.get(req.model, 0.0))
            yield protocol.chunk(cid, req.model, delta={"content": word if k == 0 else " " + word})
        yield protocol.chunk(cid, req.model, finish_reason="stop")
        yield protocol.chunk(cid, req.model, usage_=protocol.usage(3, len(text.split())))


def _serve(store_url: str, deployment: str, port_file: str) -> None:
    from pathlib import Path

    from tunewise.deploy.gateway import DeploymentGateway
    from tunewise.serve.api import bound_port, create_app, make_server
    from tunewise.store import Store

    import threading

    store = Store.open(store_url)
    app = create_app([VariantsBackend(delays={"base": 0.002, "cand": 0.002})], deployments=[DeploymentGateway.open(deployment, store=store)])
    ready = threading.Event()
    server = make_server(app, "127.0.0.1", 0, ready=ready)

    def announce():
        ready.wait()
        Path(port_file).write_text(str(bound_port(server)))

    threading.Thread(target=announce, daemon=True).start()
    server.run()


if __name__ == "__main__":
    _serve(*sys.argv[1:4])
