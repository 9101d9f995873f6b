"""Shared fixtures: an isolated workspace per test, tiny random-init models, a real PostgreSQL server.

Never the network: the workspace points at a temp dir, models are built from a config, and the
PostgreSQL server is started from the Debian binaries in a temp folder (skipped where they are absent;
`.ci/run` installs them so CI always runs those tests).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
TINY_TOKENIZER = ASSETS / "tiny-tokenizer"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path, monkeypatch):
    """Every test gets its own workspace and SQLite store; nothing touches the user's files."""
    home = tmp_path / "workspace"
    home.mkdir()
    monkeypatch.setenv("TUNEWISE_HOME", str(home))
    monkeypatch.delenv("TUNEWISE_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def store(isolated_workspace):
    from tunewise.store import Store

    opened = Store.open()
    yield opened
    opened.close()


def build_tiny_model(target: Path, *, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """A random-init Llama-shaped causal LM with the tiny ChatML tokenizer, saved as a Hugging Face folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(TINY_TOKENIZER)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Path of a tiny causal LM folder (2 layers, hidden 32, 512-token vocab): loads in milliseconds."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a throwaway PostgreSQL server started in a temp folder for this test session."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="tunewise-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as the Debian package's `postgres` user.
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if prefix else os.environ.get("USER", "postgres")
    port = _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust"], check=True, capture_output=True)
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
         f"-p {port} -k {sockets} -c listen_addresses='127.0.0.1' -c fsync=off", "start"],
        check=True, capture_output=True,
    )
    url = f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
    try:
        yield url
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_postgres_url(postgres_url):
    """A new empty database on the session's PostgreSQL server."""
    import psycopg

    name = f"tw_{int(time.time() * 1e6)}"
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"
