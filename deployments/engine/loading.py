"""Find, check and load a causal-LM checkpoint with native transformers classes only.

No `trust_remote_code`, ever: ChatGLM3's remote code breaks on current transformers and running
downloaded code is a security hole. A ChatGLM3 directory in its original layout is converted in
memory and served as `GlmForCausalLM` (see `chatglm3.py`).
"""

from __future__ import annotations

import gc
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deployments.engine import chatglm3
from deployments.engine.errors import ModelNotAvailable
from deployments.engine.quantization import (
    DEFAULT_KV_CACHE_TOKENS,
    choose_precision,
    free_gpu_bytes,
    from_pretrained_kwargs,
    model_shape,
    next_lower_precision,
    weights_dtype,
)
from deployments.engine.tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    precision: str
    load_time_s: float
    layout: str = "native"
    # One entry per out-of-memory retry at a lower precision: {"from", "to", "error"}.
    downgrades: list[dict[str, str]] = field(default_factory=list)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict[str, Any]:
        """What /api/model/status says about the loaded model."""
        return {
            "precision": self.precision,
            "precision_downgrades": self.downgrades,
            "layout": self.layout,
            "device": self.device,
            "load_time_s": round(self.load_time_s, 3),
            "parameters": self.parameters,
        }


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelNotAvailable(".", "device 'cuda' requested but torch sees no CUDA device")
    return device


def missing_shards(path: Path) -> list[str]:
    """Shards an index file names that are not on disk."""
    missing: list[str] = []
    for index_file in path.glob("*.index.json"):
        shards = set(json.loads(index_file.read_text())["weight_map"].values())
        missing += sorted(name for name in shards if not (path / name).is_file())
    return missing


def check_checkpoint(path: Path) -> None:
    """Raise ModelNotAvailable naming what is missing, before transformers says it vaguely."""
    if not path.is_dir():
        raise ModelNotAvailable(path, "model directory does not exist")
    if not (path / "config.json").is_file():
        raise ModelNotAvailable(path, "config.json is missing")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ModelNotAvailable(path, "no weight files (*.safetensors or *.bin)")
    if missing := missing_shards(path):
        raise ModelNotAvailable(path, f"incomplete download, missing shards: {missing}")
    if chatglm3.is_original_layout(path) and not (path / "tokenizer.model").is_file():
        raise ModelNotAvailable(path, "tokenizer.model is missing")


class Checkpoint:
    """Tokenizer and config read up front (cheap); the weights load per precision on demand."""

    layout = "native"

    def __init__(self, path: Path):
        from transformers import AutoConfig

        self.path = path
        self.tokenizer = load_tokenizer(path)
        self.config = AutoConfig.from_pretrained(path)

    def load(self, precision: str, device: str):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(
            self.path, **from_pretrained_kwargs(precision, device)
        )


class OriginalChatGLM3Checkpoint(Checkpoint):
    """ChatGLM3 as published: converted to GLM names in memory, shard by shard."""

    layout = "chatglm3-original"

    def __init__(self, path: Path):
        self.path = path
        self.tokenizer = load_tokenizer(path)
        self.config = chatglm3.native_config(path, self.tokenizer)

    def load(self, precision: str, device: str):
        from transformers import GlmForCausalLM

        state = chatglm3.converted_state_dict(
            self.path, self.config, weights_dtype(precision, device)
        )
        model = GlmForCausalLM.from_pretrained(
            None, config=self.config, state_dict=state, **from_pretrained_kwargs(precision, device)
        )
        model.generation_config = chatglm3.generation_config(self.tokenizer)
        return model


def open_checkpoint(path: Path) -> Checkpoint:
    if chatglm3.is_original_layout(path):
        return OriginalChatGLM3Checkpoint(path)
    return Checkpoint(path)


def resolve_precision(
    precision: str, device: str, checkpoint: Checkpoint, kv_cache_tokens: int
) -> str:
    """`auto` sizes the model plus `kv_cache_tokens` of KV cache against free GPU memory; see
    `quantization.choose_precision`."""
    if precision != "auto":
        return precision
    free = free_gpu_bytes() if device == "cuda" else 0
    return choose_precision(device, model_shape(checkpoint.config), free, kv_cache_tokens)


def free_memory() -> None:
    """Return what a failed load left behind to the allocator (and the GPU to the driver)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def load_weights(
    checkpoint: Checkpoint, precision: str, device: str, allow_downgrade: bool
) -> tuple[Any, str, list[dict[str, str]]]:
    """Load at `precision`; on out-of-memory free everything and step down the ladder."""
    downgrades: list[dict[str, str]] = []
    while True:
        try:
            return checkpoint.load(precision, device), precision, downgrades
        except torch.OutOfMemoryError as error:
            failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        free_memory()
        lower = next_lower_precision(precision) if allow_downgrade else None
        if lower is None:
            raise ModelNotAvailable(
                checkpoint.path, f"out of memory loading in {precision} ({failure})"
            )
        logger.warning("out of memory loading in %s; retrying in %s", precision, lower)
        downgrades.append({"from": precision, "to": lower, "error": failure})
        precision = lower


def load_model(
    model_path: str | Path,
    precision: str = "auto",
    device: str = "auto",
    allow_downgrade: bool = True,
    kv_cache_tokens: int = DEFAULT_KV_CACHE_TOKENS,
) -> LoadedModel:
    """Load tokenizer and model onto `device` in `precision` (`auto` leaves room for
    `kv_cache_tokens` of KV cache); ModelNotAvailable if unusable."""
    path = Path(model_path)
    check_checkpoint(path)
    device = resolve_device(device)
    started = time.perf_counter()
    try:
        checkpoint = open_checkpoint(path)
        precision = resolve_precision(precision, device, checkpoint, kv_cache_tokens)
        model, precision, downgrades = load_weights(checkpoint, precision, device, allow_downgrade)
    except (OSError, ValueError, KeyError, ImportError) as error:
        raise ModelNotAvailable(path, f"transformers could not load it: {error}") from error
    tokenizer = checkpoint.tokenizer  # load_tokenizer checked its chat template and padding
    model.eval()
    elapsed = time.perf_counter() - started
    logger.info(
        "loaded %s (%s) on %s in %s (%.1f s)", path, checkpoint.layout, device, precision, elapsed
    )
    return LoadedModel(model, tokenizer, device, precision, elapsed, checkpoint.layout, downgrades)
