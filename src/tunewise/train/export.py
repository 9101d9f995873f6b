"""Export a trained run: merge the LoRA adapter into its base and write safetensors or GGUF.

    from tunewise.train.export import export
    result = export("run-3f2a9c1b7d", "merged/", fmt="safetensors")   # HF folder: weights + tokenizer + chat template
    result = export("run-3f2a9c1b7d", "model.gguf", fmt="gguf")        # one file for llama.cpp / Ollama

The merge is PEFT's `merge_and_unload`. GGUF is written with the `gguf` package's writer (the
library llama.cpp's own converter is built on) for Llama-architecture models such as SmolLM2:
the same tensor names, Q/K row order and tokenizer keys as llama.cpp's `convert_hf_to_gguf.py`,
in f16 or f32. Other architectures get a one-line error naming that converter.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tunewise.errors import TrainingError

FORMATS = ("safetensors", "gguf")
GGUF_TYPES = ("f16", "f32")
_GGUF_ARCHITECTURES = {"llama"}  # model_type values whose tensors map 1:1 onto llama.cpp's LLAMA layout


@dataclass
class ExportResult:
    path: Path
    format: str
    merged: bool
    bytes: int
    run_id: str | None = None


def export(
    run_or_path,
    output: str | Path,
    *,
    fmt: str = "safetensors",
    merge: bool = True,
    gguf_type: str = "f16",
    dtype: str = "float32",
    store=None,
) -> ExportResult:
    """Write a run's model to `output`: a merged Hugging Face folder, the bare adapter, or a GGUF file.

    `run_or_path` is a Run, a run id, or an adapter / model folder. GGUF always merges (llama.cpp
    serves one set of weights). The export is recorded in the run's artifacts when a run is given.
    Example: export("run-3f2a9c1b7d", "smollm2-tickets.gguf", fmt="gguf")
    """
    from tunewise.train.local import _artifact_folder

    if fmt not in FORMATS:
        raise TrainingError(f"export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "gguf" and gguf_type not in GGUF_TYPES:
        raise TrainingError(f"gguf type {gguf_type!r}: choose one of {', '.join(GGUF_TYPES)}")
    output = Path(output)
    run_id = _run_id(run_or_path)
    folder = _artifact_folder(run_or_path, store)
    if not folder.is_dir():
        raise TrainingError(f"{folder}: the run's artifact folder is missing; retrain or pass the folder")
    is_adapter = (folder / "adapter_config.json").exists()

    if fmt == "safetensors" and not merge:
        if output.exists() and any(output.iterdir()):
            raise TrainingError(f"{output}: folder exists and is not empty; choose another -o")
        shutil.copytree(folder, output, dirs_exist_ok=True)
        result = ExportResult(output, fmt, False, _size(output), run_id)
    else:
        model, tokenizer = merged_model(folder, dtype=dtype)
        if fmt == "safetensors":
            if output.exists() and (not output.is_dir() or any(output.iterdir())):
                raise TrainingError(f"{output}: exists and is not an empty folder; choose another -o")
            output.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(output, safe_serialization=True)
            tokenizer.save_pretrained(output)  # tokenizer files and the chat template
            result = ExportResult(output, fmt, is_adapter, _size(output), run_id)
        else:
            if output.suffix != ".gguf":
                output = output / "model.gguf" if output.is_dir() or not output.suffix else output
            if output.exists():
                raise TrainingError(f"{output}: file exists; choose another -o")
            write_gguf(model, tokenizer, output, outtype=gguf_type, pre=_tokenizer_pre(folder))
            result = ExportResult(output, fmt, is_adapter, output.stat().st_size, run_id)

    if run_id is not None:
        _record(run_id, result, store)
    return result


def merged_model(folder: Path, *, dtype: str = "float32"):
    """`(model, tokenizer)`: the base with the adapter folded in (PEFT merge_and_unload), or the full model."""
    import torch

    from tunewise.train.local import load_trained

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise TrainingError(f"dtype {dtype!r}: choose float32, bfloat16 or float16")
    model, tokenizer = load_trained(folder)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.to(torch_dtype), tokenizer


# -- GGUF ----------------------------------------------------------------------------------------


def write_gguf(model, tokenizer, path: Path, *, outtype: str = "f16", pre: str = "default", name: str | None = None) -> Path:
    """Write a Llama-architecture model and its byte-level BPE tokenizer as one GGUF file."""
    import tempfile

    import gguf
    import numpy as np

    config = model.config
    if config.model_type not in _GGUF_ARCHITECTURES:
        raise TrainingError(
            f"GGUF export supports Llama-architecture models (SmolLM2, Llama), not {config.model_type!r}: export "
            "--format safetensors, then run llama.cpp's convert_hf_to_gguf.py (pip install llama-cpp-python or clone llama.cpp)"
        )
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None or '"type":"BPE"' not in backend.to_str().replace(" ", ""):
        raise TrainingError("GGUF export needs a byte-level BPE tokenizer (tokenizer.json); export --format safetensors instead")

    arch = gguf.MODEL_ARCH.LLAMA
    layers = config.num_hidden_layers
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name or path.stem)
    writer.add_block_count(layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.ALL_F32)

    # Tokenizer: the token list in id order, control tokens marked, merges and special ids from tokenizer.json.
    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    special |= {i for i, tok in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(tok, "special", False)}
    tokens, types = [], []
    for i in range(config.vocab_size):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        specials = gguf.SpecialVocab(tmp, load_merges=True, n_vocab=len(tokens))
        specials.chat_template = _plain_template(tokenizer.chat_template)
        specials.add_to_gguf(writer, quiet=True)

    names = gguf.get_tensor_name_map(arch, layers)
    state = model.state_dict()
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key, tensor in state.items():
        if key.endswith("rotary_emb.inv_freq") or (tied and key == "lm_head.weight"):
            continue
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise TrainingError(f"GGUF export: no llama.cpp name for tensor {key}; export --format safetensors instead")
        data = tensor.detach().float().cpu().numpy()
        if key.endswith("q_proj.weight"):
            data = _permute(data, n_head, n_head)
        elif key.endswith("k_proj.weight"):
            data = _permute(data, n_head, n_kv)
        if outtype == "f16" and data.ndim > 1:
            data = data.astype(np.float16)
        writer.add_tensor(target, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _permute(weights, n_head: int, n_head_kv: int):
    """llama.cpp's rotary layout for Q/K rows (the inverse of what transformers' GGUF loader undoes)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _rope_theta(config) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        params = getattr(config, "rope_parameters", None) or {}
        theta = params.get("rope_theta", 10000.0)
    return theta


def _plain_template(template: str | None) -> str | None:
    """The chat template without TRL's `{% generation %}` markers, which llama.cpp's Jinja engine does not know."""
    if not template:
        return template
    import re

    return re.sub(r"\{%-?\s*(end)?generation\s*-?%\}", "", template)


def _tokenizer_pre(folder: Path) -> str:
    """llama.cpp's pre-tokenizer name: copied from the base GGUF when the base was one, else 'default'."""
    from tunewise.train.local import _adapter_base

    try:
        from tunewise.models import resolve

        source = resolve(_adapter_base(folder)) if (folder / "adapter_config.json").exists() else None
        if source is not None and source.is_gguf:
            import gguf

            field = gguf.GGUFReader(source.path / source.gguf_file).fields.get("tokenizer.ggml.pre")
            if field is not None:
                return str(field.contents())
    except Exception:  # noqa: BLE001 - the name only tunes llama.cpp's pre-tokenizer; 'default' is valid
        pass
    return "default"


# -- bookkeeping ---------------------------------------------------------------------------------


def _run_id(run_or_path) -> str | None:
    if hasattr(run_or_path, "id"):
        return run_or_path.id
    if isinstance(run_or_path, str) and not Path(run_or_path).exists():
        return run_or_path
    return None


def _record(run_id: str, result: ExportResult, store) -> None:
    from tunewise.store import Store

    with Store.borrow(store) as store:
        run = store.get_run(run_id)
        artifacts = dict(run.artifacts or {})
        key = "gguf" if result.format == "gguf" else ("merged" if result.merged else "adapter_copy")
        artifacts[key] = str(result.path)
        store.update_run(run_id, artifacts=artifacts)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


__all__ = ["export", "merged_model", "write_gguf", "ExportResult", "FORMATS", "GGUF_TYPES"]
