"""The hardware-dependent choices of a run: device, precision, threads, attention kernel, Liger, QLoRA.

Every GPU-only feature is decided here and degrades to a no-op on CPU, so the same config trains
on a laptop and on an H100. Precision is chosen from the hardware, never left to TRL's default
(which turns bf16 on and makes CPU steps about 14x slower on CPUs without bf16 instructions).
"""

from __future__ import annotations

import importlib.util
import os
import resource
from dataclasses import dataclass

from tunewise.errors import TrainingError


@dataclass(frozen=True)
class Hardware:
    device: str  # cpu | cuda
    precision: str  # fp32 | bf16 | fp16
    name: str

    @property
    def torch_dtype(self):
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]


def detect_hardware(config) -> Hardware:
    """CUDA when present, else CPU; precision `auto` means fp32 on CPU and bf16 (else fp16) on a GPU."""
    import torch

    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        precision = config.precision if config.precision != "auto" else ("bf16" if bf16 else "fp16")
        return Hardware("cuda", precision, torch.cuda.get_device_name(0))
    if config.method == "qlora":
        raise TrainingError("method qlora needs a CUDA GPU with bitsandbytes; on CPU use method: lora")
    precision = "fp32" if config.precision == "auto" else config.precision
    if precision == "fp16":
        raise TrainingError("precision fp16 needs a GPU; on CPU use precision: auto (fp32)")
    return Hardware("cpu", precision, "cpu")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Intra-op threads for torch: the given number, else every core this process may run on."""
    import torch

    count = threads or available_cores()
    torch.set_num_threads(count)
    return count


def attention_implementation(config, hardware: Hardware) -> str | None:
    """The config's choice, else flash_attention_2 on a GPU when installed, else SDPA."""
    if config.attn_implementation:
        if config.attn_implementation.startswith("flash") and hardware.device != "cuda":
            return "sdpa"
        return config.attn_implementation
    if hardware.device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def padding_free_ok(config, hardware: Hardware, attn: str | None) -> bool:
    """Padding-free batches need a varlen attention kernel (flash attention) and a GPU; off elsewhere."""
    return bool(config.padding_free and hardware.device == "cuda" and attn and attn.startswith("flash"))


def liger_available() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def apply_liger(model, hardware: Hardware) -> bool:
    """Liger's Triton kernels (RMSNorm, RoPE, SwiGLU) on a GPU when installed; False (a no-op) otherwise.

    The fused linear cross-entropy is left out: TRL already computes the loss in chunks without
    materialising the full logits.
    """
    if hardware.device != "cuda" or not liger_available():
        return False
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=False, cross_entropy=False)
    return True


def score_labelled_positions_only(enabled: bool = True) -> bool:
    """Let TRL's chunked LM-head loss score only the positions that carry a label on the CPU too.

    TRL (1.x) scores just the labelled positions on Triton devices, but every position elsewhere, so that
    tile shapes stay fixed where a new shape means a recompilation (its comment names Neuron). Eager CPU
    compiles nothing, and with the loss on the assistant reply only, a classification row has a few labelled
    tokens among ~150: scoring all of them through a 49k-token vocabulary was 60% of a CPU step. The loss and
    gradients are the same (tests/train/test_fast.py compares them); a 4-step run of the embedded model on 25
    tickets took 22 s instead of 65 s. TRL has no option for it, hence this patch of the one name TRL reads to
    decide. Returns whether the patch is in place (False where TRL's layout is another one: then nothing changes).
    """
    try:
        from trl.kernels import chunked_logprob
        from trl.trainer import utils as trl_utils
    except ImportError:
        return False
    kernel_choice = getattr(chunked_logprob, "_use_triton", None)
    current = getattr(trl_utils, "_use_triton", None)
    if kernel_choice is None or current is None:
        return False
    if not enabled:
        trl_utils._use_triton = kernel_choice
        return False
    if current is kernel_choice:
        def compact_here(device) -> bool:  # the kernels still choose Triton by their own module's function
            return kernel_choice(device) or device.type == "cpu"

        compact_here.tunewise_patch = True
        trl_utils._use_triton = compact_here
    return getattr(trl_utils._use_triton, "tunewise_patch", False)


def qlora_quantization(hardware: Hardware):
    """4-bit NF4 quantization for QLoRA (GPU and bitsandbytes only)."""
    if hardware.device != "cuda":
        raise TrainingError("method qlora needs a CUDA GPU with bitsandbytes; on CPU use method: lora")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainingError("method qlora needs bitsandbytes: `pip install bitsandbytes` (or the `gpu` extra)")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=hardware.torch_dtype,
    )


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated by torch on CUDA; the process's peak resident memory on CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
