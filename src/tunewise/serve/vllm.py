"""A backend that serves a base model and its LoRA adapters through vLLM's OpenAI server.

Two modes:

- attach (`url=`): a vLLM server already runs; its `GET /v1/models` says what it serves;
- launch (`model=`): tunewise starts `vllm serve` on a free loopback port (`vllm_command` builds the
  line), waits for `GET /health`, and stops it on close.

vLLM serves an adapter under its own name (a request's `model` is the adapter name), so each route maps
a name to the same name at the vLLM URL. `url` may be given as the server's root or its `/v1` base;
routes hold the `/v1` base, as `UpstreamBackend` expects, and `/health` and the LoRA routes are at the
root.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tunewise.errors import ConfigError, TunewiseError
from tunewise.serve.backend import ModelCard
from tunewise.serve.protocol import APIError
from tunewise.serve.upstream import Upstream, UpstreamBackend, transport_error, api_key_for, upstream_error

# The ranks vLLM accepts for --max-lora-rank (MaxLoRARanks in vllm/config/lora.py; older releases took
# 8..256 only). It sizes the LoRA buffers, so the smallest one that fits the adapters is best.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

NOT_INSTALLED = "vLLM is not installed here: install it on a GPU machine (pip install vllm) or pass --vllm-url of a running vLLM server"


def adapter_rank(path: str | Path) -> int:
    """The largest LoRA rank in an adapter folder's adapter_config.json (`r`, and `rank_pattern` overrides)."""
    from tunewise.serve.mixed_lora import AdapterLoadError, read_adapter_config
    from tunewise.serve.mixed_lora import adapter_rank as config_rank

    try:
        return config_rank(read_adapter_config(Path(path)))
    except AdapterLoadError as exc:
        raise ConfigError(f"adapter {path}: {exc}, so its LoRA rank is unknown (pass max_lora_rank)") from None


def vllm_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts that holds `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ConfigError(f"LoRA rank {rank} is above the largest vLLM serves ({VLLM_LORA_RANKS[-1]})")


def served_base_name(model: str) -> str:
    """The name the base model is served under: the last part of its path or hub id."""
    return Path(model.rstrip("/")).name or model


def vllm_command(model: str, adapters: dict[str, str], *, port: int, host: str = "127.0.0.1", served_name: str | None = None,
                 max_lora_rank: int | None = None, max_loras: int | None = None, extra_args: Sequence[str] = ()) -> list[str]:
    """The `vllm serve` command line for a base model and its adapters (name -> folder).

    LoRA is enabled when there are adapters, or when `max_lora_rank` or `max_loras` is given (to load
    adapters at run time only). `max_lora_rank` defaults to the adapters' largest rank rounded up to one
    vLLM accepts; `max_loras` (adapters in one batch) to one per adapter.
    """
    command = ["vllm", "serve", model, "--host", host, "--port", str(port), "--served-model-name", served_name or served_base_name(model)]
    if adapters or max_lora_rank is not None or max_loras is not None:
        needed = vllm_lora_rank(max(adapter_rank(path) for path in adapters.values())) if adapters else None
        if max_lora_rank is not None:
            if max_lora_rank not in VLLM_LORA_RANKS:
                raise ConfigError(f"max_lora_rank {max_lora_rank}: vLLM accepts {', '.join(map(str, VLLM_LORA_RANKS))}")
            if needed is not None and max_lora_rank < needed:
                raise ConfigError(f"max_lora_rank {max_lora_rank} is below the adapters' rank (they need {needed})")
        rank = max_lora_rank if max_lora_rank is not None else needed
        command.append("--enable-lora")
        if adapters:
            command += ["--lora-modules", *(f"{name}={path}" for name, path in adapters.items())]
        command += ["--max-loras", str(max_loras if max_loras is not None else max(1, len(adapters)))]
        if rank is not None:
            command += ["--max-lora-rank", str(rank)]
    return command + list(extra_args)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class VLLMBackend(UpstreamBackend):
    """A base model and LoRA adapters served by vLLM; adapters load and unload at run time.

    Launch: `adapters` become `--lora-modules`. Attach: those the server does not list yet are loaded
    through its API at start. The served names are what vLLM lists, reread by `refresh()`.
    """

    name = "vllm"

    def __init__(self, model: str | None = None, adapters: dict[str, str] | None = None, *, url: str | None = None,
                 served_name: str | None = None, host: str = "127.0.0.1", port: int | None = None,
                 max_lora_rank: int | None = None, max_loras: int | None = None, extra_args: Sequence[str] = (),
                 api_key: str | None = None, startup_timeout_s: float = 1200.0, stop_timeout_s: float = 30.0,
                 log_path: str | Path | None = None, timeout_s: float = 600.0, transport: httpx.AsyncBaseTransport | None = None):
        super().__init__({}, timeout_s=timeout_s, transport=transport)
        if (url is None) == (model is None):
            raise ConfigError("the vLLM backend needs one of two: a model to launch vLLM with, or the url of a running vLLM server")
        self.adapters = {name: _local_path(path) for name, path in (adapters or {}).items()}
        self.startup_timeout_s, self.stop_timeout_s = startup_timeout_s, stop_timeout_s
        self.process: subprocess.Popen | None = None
        self.log_path = Path(log_path) if log_path else None
        self.launch = url is None
        if self.launch:
            if shutil.which("vllm") is None:
                raise ConfigError(NOT_INSTALLED)
            self.host, self.port = host, port
            self.base_name = served_name or served_base_name(model)
            self._command_args = dict(model=_local_path(model), adapters=self.adapters, host=host, served_name=self.base_name,
                                      max_lora_rank=max_lora_rank, max_loras=max_loras, extra_args=tuple(extra_args))
            self.lora = bool(self.adapters) or max_lora_rank is not None or max_loras is not None
            vllm_command(port=port or 0, **self._command_args)  # bad adapters or ranks fail now, not after a launch
            self.root, self.api_key = None, None
        else:
            self.root = url.rstrip("/").removesuffix("/v1")
            self.base_name, self.lora = served_name, True
            self.api_key = api_key or api_key_for(self.root)

    @property
    def url(self) -> str | None:
        return self.root and self.root + "/v1"

    @property
    def loads_adapters(self) -> bool:
        return self.lora

    @property
    def command(self) -> list[str]:
        """The `vllm serve` line this backend launches (its port is chosen at start unless given)."""
        return vllm_command(port=self.port or 0, **self._command_args)

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    # -- lifecycle --

    async def start(self) -> None:
        await super().start()
        try:
            if self.launch:
                await self._launch()
            else:
                await self._check_health()
            await self.refresh()
            for name, path in self.adapters.items():
                if not self.launch and name not in self.routes:
                    await self.load_adapter(name, path)
        except BaseException:
            await self.close()
            raise

    async def _launch(self) -> None:
        self.port = self.port or free_port(self.host)
        command = self.command
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="tunewise-vllm-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}  # without it vLLM has no /v1/load_lora_adapter
        with open(self.log_path, "ab") as log:
            # Its own session: vLLM starts engine processes, and close() stops the whole group.
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        # A server listening on every address is still reached through loopback.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        self.root = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = self.process.poll()
            if code is not None:
                raise TunewiseError(f"vLLM exited with code {code} before it was ready ({' '.join(command)}); "
                                    f"the end of its log {self.log_path}:\n{_log_tail(self.log_path)}")
            try:
                response = await self.client.get(f"{self.root}/health", timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise TunewiseError(f"vLLM did not answer {self.root}/health within {self.startup_timeout_s:g} s; "
                                    f"the end of its log {self.log_path}:\n{_log_tail(self.log_path)}")
            await asyncio.sleep(0.25)

    async def _check_health(self) -> None:
        try:
            response = await self.client.get(f"{self.root}/health", headers=self._headers(), timeout=10.0)
        except httpx.TransportError as exc:
            raise TunewiseError(f"no vLLM server answers at {self.root}: {str(exc) or type(exc).__name__}") from None
        if response.status_code != 200:
            raise TunewiseError(f"the vLLM server at {self.root} is not healthy: GET /health answered {response.status_code}")

    async def refresh(self) -> list[ModelCard]:
        """Reread what vLLM serves (GET /v1/models: the base, then adapters with their `parent`)."""
        try:
            response = await self.client.get(f"{self.url}/models", headers=self._headers())
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc, self.timeout_s) from None
        if response.status_code != 200:
            raise upstream_error(self.url, response.status_code, response.content)
        cards = [card for card in response.json().get("data", []) if isinstance(card, dict) and card.get("id")]
        bases = [card["id"] for card in cards if not card.get("parent")]
        if self.base_name is None and bases:
            self.base_name = bases[0]
        self.routes = {
            card["id"]: Upstream(self.url, card["id"], self.api_key, kind="vllm", parent=card.get("parent"), source=card.get("root"))
            for card in cards
        }
        return self.models()

    async def close(self) -> None:
        await super().close()
        if self.process is not None:
            await asyncio.to_thread(self._stop)
            self.process = None

    def _stop(self) -> None:
        process = self.process
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=self.stop_timeout_s)

    def health(self) -> dict:
        if self.process is not None and self.process.poll() is not None:
            return {"status": "exited", "code": self.process.returncode, "log": str(self.log_path)}
        return super().health()

    # -- adapters --

    async def _lora_call(self, route: str, body: dict) -> None:
        if self.client is None:
            raise APIError(503, "the vllm backend is not started")
        try:
            response = await self.client.post(f"{self.root}/v1/{route}", json=body, headers=self._headers())
        except httpx.TransportError as exc:
            raise transport_error(self.root, exc, self.timeout_s) from None
        if response.status_code == 200:
            return
        if response.status_code in (404, 405) and _is_missing_route(response):
            raise APIError(400, f"the vLLM server at {self.root} does not load adapters at run time: start it with --enable-lora "
                                "and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in its environment", param="lora_name")
        raise upstream_error(self.root, response.status_code, response.content)

    async def load_adapter(self, name: str, path: str) -> ModelCard:
        if not self.lora:
            return await super().load_adapter(name, path)
        if name == self.base_name:
            raise APIError(400, f"'{name}' is the base model's name: give the adapter another", param="lora_name")
        path = _local_path(path)
        await self._lora_call("load_lora_adapter", {"lora_name": name, "lora_path": path})
        self.routes[name] = Upstream(self.url, name, self.api_key, kind="vllm", parent=self.base_name, source=path)
        return self.routes[name].card(name)

    async def unload_adapter(self, name: str) -> None:
        if not self.lora:
            return await super().unload_adapter(name)
        if name == self.base_name:
            raise APIError(400, f"'{name}' is the base model, not an adapter", param="lora_name")
        await self._lora_call("unload_lora_adapter", {"lora_name": name})
        self.routes.pop(name, None)


def _local_path(path: str) -> str:
    """An existing local path made absolute (vLLM may run elsewhere: anything else, a hub id say, goes as given)."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def _is_missing_route(response: httpx.Response) -> bool:
    """FastAPI's own 404/405 (`{"detail": "Not Found"}`): the route is absent, not the adapter."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("detail") in ("Not Found", "Method Not Allowed")


__all__ = ["VLLMBackend", "vllm_command", "adapter_rank", "vllm_lora_rank", "served_base_name", "VLLM_LORA_RANKS", "NOT_INSTALLED"]
