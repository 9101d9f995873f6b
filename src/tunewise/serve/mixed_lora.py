"""Many LoRA adapters over one base model, any mix of them in one forward pass.

Two engines with one interface (`load`, `unload`, `names`, and a forward that takes `adapter_names`, one
name per row, `"__base__"` for the base), so `generate_batched` serves rows of different adapters together:

- `PeftEngine` is PEFT itself: `PeftModel.load_adapter` and its mixed-batch `adapter_names=[...]` forward.
  It serves every adapter PEFT can load (DoRA, embeddings, modules_to_save), but it splits each batch by
  adapter in every LoRA layer: on this CPU 8 adapters in one batch decoded at about 0.4x the base model.
- `StackedEngine` (the default) keeps, per target layer, every adapter's A side by side in one matrix and
  every B (pre-scaled) stacked in another, so a mixed batch costs two matrix products per layer whatever
  the mix: `((x @ A_all) * row_mask) @ B_all`, the mask keeping each row's own adapter's columns. A batch
  of one adapter uses that adapter's matrices only; a batch of base rows skips the layers' extra work.
  PEFT has no such batched path for plain LoRA, hence this file; it reads PEFT's saved weights and config
  and checks against PEFT in the tests. Adapters it cannot express (DoRA, trained biases, modules_to_save,
  embedding LoRA) are refused with a message that names `--engine peft`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

BASE = "__base__"


class AdapterLoadError(Exception):
    """An adapter folder that cannot be served (missing, not a LoRA adapter, another base model, unsupported)."""


@dataclass
class AdapterInfo:
    name: str
    folder: Path
    rank: int
    targets: int  # layers it changes
    base_model: str | None = None
    dora: bool = False


def read_adapter_config(folder: Path) -> dict:
    """A LoRA adapter folder's adapter_config.json, checked to be one (the local engines and the vLLM launcher read it)."""
    folder = Path(folder)
    path = folder / "adapter_config.json"
    if not path.exists():
        raise AdapterLoadError(f"{folder}: not a LoRA adapter folder (no adapter_config.json)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise AdapterLoadError(f"{path}: unreadable adapter config ({exc})") from exc
    if not isinstance(config, dict):
        raise AdapterLoadError(f"{path}: not a LoRA adapter config (not a JSON object)")
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterLoadError(f"{path}: a {config.get('peft_type')} adapter, not LoRA")
    return config


def adapter_rank(config: dict) -> int:
    """The largest rank an adapter uses (its `r` and any per-layer `rank_pattern`)."""
    ranks = [config.get("r")] + list((config.get("rank_pattern") or {}).values())
    if not all(isinstance(r, int) and r > 0 for r in ranks):
        raise AdapterLoadError("not a LoRA adapter config (no whole-number `r`)")
    return max(ranks)


class _ForwardModel:
    """What `generate_batched` needs of a model: `config`, `generation_config`, `parameters()`, and calling it.

    `lock` is held by whoever generates (the scheduler, for a whole batch) and by `load`/`unload` while they
    change the weights, so an adapter never changes under a batch that uses it.
    """

    model = None

    @property
    def config(self):
        return self.model.config

    @property
    def generation_config(self):
        return self.model.generation_config

    def parameters(self):
        return self.model.parameters()

    def __call__(self, *args, adapter_names=None, **kwargs):
        return self.forward(*args, adapter_names=adapter_names, **kwargs)

    def can_mix(self, names: set[str]) -> bool:
        """Whether rows of these adapters can share a forward pass."""
        return True

    def names(self) -> list[str]:
        """The loaded adapters, in load order."""
        return list(self.adapters)


@dataclass
class _Layer:
    """One target linear layer: the adapters' weights in load order, and their stacked form."""

    module: object
    a: dict[str, object] = field(default_factory=dict)  # name -> A^T (in, r)
    b: dict[str, object] = field(default_factory=dict)  # name -> (B^T * scale) (r, out)
    a_all: object = None  # (in, sum of ranks)
    b_all: object = None  # (sum of ranks, out)
    columns: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> its columns in a_all
    layout: tuple = ()  # columns as a hashable key for the masks of one forward pass

    def restack(self):
        import torch

        names = list(self.a)
        if not names:
            self.a_all = self.b_all = None
            self.columns, self.layout = {}, ()
            return
        self.a_all = torch.cat([self.a[n] for n in names], dim=1).contiguous()
        self.b_all = torch.cat([self.b[n] for n in names], dim=0).contiguous()
        self.columns, start = {}, 0
        for n in names:
            width = self.a[n].shape[1]
            self.columns[n] = (start, start + width)
            start += width
        self.layout = tuple(self.columns.items())


class StackedEngine(_ForwardModel):
    """Plain LoRA adapters served in mixed batches with two matrix products per layer (see the module docstring)."""

    kind = "stacked"

    def __init__(self, model):
        self.model = model
        self.adapters: dict[str, AdapterInfo] = {}
        self._layers: dict[str, _Layer] = {}
        self._route = threading.local()
        self.lock = threading.Lock()

    def load(self, name: str, folder: Path) -> AdapterInfo:
        import torch
        from peft.utils import load_peft_weights
        from peft.utils.other import get_pattern_key

        folder = Path(folder)
        config = read_adapter_config(folder)
        unsupported = [
            reason for reason, present in (
                ("DoRA", config.get("use_dora")),
                ("trained biases", config.get("bias", "none") != "none"),
                ("modules_to_save", config.get("modules_to_save")),
                ("trainable tokens", config.get("trainable_token_indices")),
            ) if present
        ]
        if not any((folder / f).exists() for f in ("adapter_model.safetensors", "adapter_model.bin")):
            raise AdapterLoadError(f"{folder}: no adapter_model.safetensors (an unfinished or copied-in-part adapter?)")
        try:
            weights = load_peft_weights(str(folder), device="cpu")
        except Exception as exc:  # safetensors and torch raise many kinds for a damaged file
            raise AdapterLoadError(f"{folder}: the adapter weights could not be read ({exc})") from exc
        if any("lora_embedding" in key for key in weights):
            unsupported.append("embedding LoRA")
        if unsupported:
            raise AdapterLoadError(
                f"{folder}: uses {', '.join(unsupported)}, which the stacked engine does not serve; start the server with --engine peft"
            )
        weight = next(self.model.parameters())
        alpha, alpha_pattern = float(config.get("lora_alpha", 8)), config.get("alpha_pattern") or {}
        pairs: dict[str, tuple] = {}
        for key, tensor in weights.items():
            match = re.fullmatch(r"(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[^.]+)?\.weight", key)
            if not match:
                raise AdapterLoadError(f"{folder}: unexpected weight {key!r} in a LoRA adapter")
            module, side = match.groups()
            a, b = pairs.get(module, (None, None))
            pairs[module] = (tensor, b) if side == "A" else (a, tensor)
        staged = []
        for module, (a, b) in pairs.items():
            if a is None or b is None:
                raise AdapterLoadError(f"{folder}: layer {module} has only one of lora_A and lora_B")
            try:
                target = self.model.get_submodule(module)
            except AttributeError as exc:
                raise AdapterLoadError(f"{folder}: the base model has no layer {module} (an adapter of another base model?)") from exc
            if not isinstance(target, torch.nn.Linear) or a.shape[1] != target.in_features or b.shape[0] != target.out_features:
                raise AdapterLoadError(f"{folder}: layer {module} does not match the base model's shape (an adapter of another base model?)")
            rank = a.shape[0]  # the layer's r: the config's, or its rank_pattern entry
            module_alpha = float(alpha_pattern.get(get_pattern_key(alpha_pattern, module), alpha)) if alpha_pattern else alpha
            scale = module_alpha / math.sqrt(rank) if config.get("use_rslora") else module_alpha / rank
            staged.append((module, target, a.T.to(weight).contiguous(), (b.T * scale).to(weight).contiguous()))
        if not staged:
            raise AdapterLoadError(f"{folder}: the adapter has no LoRA weights")
        with self.lock:
            if name in self.adapters:
                self._remove(name)
            for module, target, a, b in staged:
                layer = self._layers.get(module)
                if layer is None:
                    layer = self._layers[module] = _Layer(target)
                    target.register_forward_hook(self._hook(layer))
                layer.a[name], layer.b[name] = a, b
                layer.restack()
            info = AdapterInfo(name, folder, adapter_rank(config), len(staged), config.get("base_model_name_or_path"))
            self.adapters[name] = info
        return info

    def unload(self, name: str) -> None:
        with self.lock:
            self._remove(name)

    def _remove(self, name):
        self.adapters.pop(name, None)
        for layer in self._layers.values():
            if name in layer.a:
                del layer.a[name], layer.b[name]
                layer.restack()

    def forward(self, *args, adapter_names=None, **kwargs):
        route = self._route
        route.names = adapter_names
        route.used = frozenset(adapter_names or ()) - {BASE}
        route.mixed_base = BASE in (adapter_names or ())
        route.masks = {}
        try:
            return self.model(*args, **kwargs)
        finally:
            route.names = None

    def _hook(self, layer: _Layer):
        def add_lora(module, inputs, output):
            route = self._route
            if not getattr(route, "names", None) or not route.used:
                return output
            x = inputs[0]
            if len(route.used) == 1:
                (name,) = route.used
                a = layer.a.get(name)
                if a is None:
                    return output
                h = x @ a
                if route.mixed_base:
                    h.mul_(self._row_mask(route.names, name, x))
            elif route.used.isdisjoint(layer.a):
                return output
            else:
                h = x @ layer.a_all
                h.mul_(self._column_mask(layer, route.names, x))
                name = None
            # in place, fused: the layer's fresh output gains h @ B without another full-size temporary
            flat = output.view(-1, output.shape[-1])
            flat.addmm_(h.view(-1, h.shape[-1]), layer.b[name] if name else layer.b_all)
            return output

        return add_lora

    def _row_mask(self, names, name, x):
        import torch

        key = ("row", name)
        if key not in self._route.masks:
            mask = torch.tensor([1.0 if n == name else 0.0 for n in names], dtype=x.dtype, device=x.device)
            self._route.masks[key] = mask.view(-1, *([1] * (x.dim() - 1)))
        return self._route.masks[key]

    def _column_mask(self, layer, names, x):
        """(rows, 1, sum of ranks): 1 on the columns of each row's own adapter; cached per layout for this pass."""
        import torch

        key = ("columns", layer.layout)
        if key not in self._route.masks:
            mask = torch.zeros((len(names), layer.a_all.shape[1]), dtype=x.dtype, device=x.device)
            for row, name in enumerate(names):
                if name in layer.columns:
                    start, end = layer.columns[name]
                    mask[row, start:end] = 1
            self._route.masks[key] = mask.view(len(names), *([1] * (x.dim() - 2)), -1)
        return self._route.masks[key]


class PeftEngine(_ForwardModel):
    """PEFT's own mixed-adapter batches (`adapter_names=[...]`): every adapter type PEFT loads, slower per step."""

    kind = "peft"

    def __init__(self, model):
        self.base = model
        self.model = model
        self.adapters: dict[str, AdapterInfo] = {}
        self.lock = threading.Lock()

    def load(self, name: str, folder: Path) -> AdapterInfo:
        from peft import PeftModel

        folder = Path(folder)
        config = read_adapter_config(folder)
        with self.lock:
            if name in self.adapters:
                self.model.delete_adapter(name)
                del self.adapters[name]
            try:
                if self.model is self.base:
                    self.model = PeftModel.from_pretrained(self.base, str(folder), adapter_name=name)
                else:
                    self.model.load_adapter(str(folder), adapter_name=name)
            except Exception as exc:  # PEFT raises ValueError, KeyError, RuntimeError for a mismatched adapter
                raise AdapterLoadError(f"{folder}: PEFT could not load the adapter ({exc})") from exc
            self.model.eval()
            info = AdapterInfo(name, folder, adapter_rank(config), len(config.get("target_modules") or []),
                               config.get("base_model_name_or_path"), bool(config.get("use_dora")))
            self.adapters[name] = info
        return info

    def unload(self, name: str) -> None:
        with self.lock:
            if name in self.adapters:
                self.model.delete_adapter(name)
                del self.adapters[name]

    def can_mix(self, names: set[str]) -> bool:
        # PEFT refuses adapter_names when a DoRA adapter is among them: such rows are batched only with their own kind
        return len(names) <= 1 or not any(self.adapters[n].dora for n in names if n in self.adapters)

    def forward(self, *args, adapter_names=None, **kwargs):
        if adapter_names is None or self.model is self.base:
            return self.model(*args, **kwargs)
        distinct = set(adapter_names)
        if distinct == {BASE}:
            with self.model.disable_adapter():
                return self.model(*args, **kwargs)
        if len(distinct) == 1:
            self.model.set_adapter(adapter_names[0])
            return self.model(*args, **kwargs)
        return self.model(*args, adapter_names=adapter_names, **kwargs)


ENGINES = {"stacked": StackedEngine, "peft": PeftEngine}

__all__ = ["BASE", "AdapterInfo", "AdapterLoadError", "StackedEngine", "PeftEngine", "ENGINES", "read_adapter_config", "adapter_rank"]
