"""Precisions, what each costs in memory, and which one `auto` and the out-of-memory ladder pick.

fp32/fp16/bf16 are plain dtypes; int8 (LLM.int8) and nf4 (4-bit NormalFloat) quantize every
linear layer except `lm_head` with bitsandbytes, which also runs on CPU from 0.46.1 on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
QUANTIZED = ("int8", "nf4")
# Bytes per parameter of a quantized linear weight; nf4 with double quantization stores about
# 4.13 bits per weight (4-bit codes plus 8-bit absmax per 64 weights, itself quantized).
QUANTIZED_BYTES = {"int8": 1.0, "nf4": 4.13 / 8}
# Beyond weights and KV cache: CUDA context, prefill activations, allocator slack.
RUNTIME_OVERHEAD_BYTES = int(1.5 * 1024**3)
# KV cache an engine reserves when nobody says otherwise: 8 requests × 4096 tokens (prompt plus
# script). The service passes its own: EngineConfig.kv_cache_tokens().
DEFAULT_KV_CACHE_TOKENS = 8 * 4096
GIB = 1024**3


@dataclass(frozen=True)
class ModelShape:
    """What memory estimates need, read from a config without loading weights."""

    linear_parameters: int  # quantizable: every nn.Linear except lm_head
    other_parameters: int  # embeddings, lm_head, norms, biases: kept in 16 bit when quantized
    kv_bytes_per_token: int  # K and V of every layer in 16 bit

    @property
    def parameters(self) -> int:
        return self.linear_parameters + self.other_parameters

    def weight_bytes(self, precision: str) -> int:
        if precision in QUANTIZED:
            return (
                int(self.linear_parameters * QUANTIZED_BYTES[precision]) + self.other_parameters * 2
            )
        return self.parameters * DTYPES[precision].itemsize

    def needed_bytes(self, precision: str, reserved_tokens: int = DEFAULT_KV_CACHE_TOKENS) -> int:
        """Weights + KV cache for `reserved_tokens` + runtime overhead."""
        return (
            self.weight_bytes(precision)
            + reserved_tokens * self.kv_bytes_per_token
            + RUNTIME_OVERHEAD_BYTES
        )


def model_shape(config) -> ModelShape:
    """Count parameters by building the model on the meta device: exact, and allocates nothing."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linear = sum(
        module.weight.numel()
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head")
    )
    total = sum(p.numel() for p in model.parameters())
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    kv_per_token = 2 * text.num_hidden_layers * kv_heads * head_dim * 2
    return ModelShape(linear, total - linear, kv_per_token)


def half_precision() -> str:
    """bf16 where the GPU computes it natively (Ampere and newer), else fp16."""
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp16"


def free_gpu_bytes() -> int:
    free, _total = torch.cuda.mem_get_info()
    return free


def choose_precision(
    device: str, shape: ModelShape, free_bytes: int, reserved_tokens: int = DEFAULT_KV_CACHE_TOKENS
) -> str:
    """`auto`: fp32 on CPU; on CUDA the widest of half, int8, nf4 that fits with KV headroom."""
    if device == "cpu":
        return "fp32"
    for precision in (half_precision(), "int8", "nf4"):
        if shape.needed_bytes(precision, reserved_tokens) <= free_bytes:
            return precision
    return "nf4"  # nothing fits by the estimate; try the smallest and let OOM handling report it


def next_lower_precision(precision: str) -> str | None:
    """The out-of-memory ladder: fp32 → half → int8 → nf4 → give up."""
    ladder = {"fp32": half_precision(), "fp16": "int8", "bf16": "int8", "int8": "nf4"}
    return ladder.get(precision)


def compute_dtype(device: str) -> torch.dtype:
    """Dtype of activations and unquantized weights next to 4-bit layers."""
    if device == "cpu":
        return torch.float32
    return DTYPES[half_precision()]


def weights_dtype(precision: str, device: str) -> torch.dtype:
    """Dtype the checkpoint's tensors are cast to before loading (and quantizing)."""
    if precision == "int8":
        return torch.float16  # LLM.int8 casts activations to fp16 regardless
    if precision == "nf4":
        return compute_dtype(device)
    return DTYPES[precision]


def from_pretrained_kwargs(precision: str, device: str) -> dict[str, Any]:
    """dtype, quantization and placement arguments for `from_pretrained`."""
    kwargs: dict[str, Any] = {"dtype": weights_dtype(precision, device), "device_map": device}
    if precision in QUANTIZED:
        from transformers import BitsAndBytesConfig

        if precision == "int8":
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        else:
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute_dtype(device),
            )
    return kwargs
