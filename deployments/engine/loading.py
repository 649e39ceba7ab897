"""Find, check and load a causal-LM checkpoint with native transformers classes only.

No `trust_remote_code`, ever: ChatGLM3's remote code breaks on current transformers and running
downloaded code is a security hole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


class ModelNotAvailable(RuntimeError):
    """The checkpoint cannot be served; `reason` says why and `path` where we looked."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{reason} (looked at {Path(path).resolve()})")
        self.path = str(Path(path).resolve())
        self.reason = reason


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    device: str
    precision: str
    load_time_s: float

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelNotAvailable(".", "device 'cuda' requested but torch sees no CUDA device")
    return device


def resolve_precision(precision: str, device: str) -> str:
    """auto = bf16 where the GPU supports it, else fp16 on CUDA; fp32 on CPU."""
    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def check_checkpoint(path: Path) -> None:
    """Raise ModelNotAvailable naming what is missing, before transformers raises something vaguer."""
    if not path.is_dir():
        raise ModelNotAvailable(path, "model directory does not exist")
    if not (path / "config.json").is_file():
        raise ModelNotAvailable(path, "config.json is missing")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ModelNotAvailable(path, "no weight files (*.safetensors or *.bin)")


def load_model(model_path: str | Path, precision: str = "auto", device: str = "auto") -> LoadedModel:
    """Load tokenizer and model onto `device` in `precision`; raise ModelNotAvailable if unusable."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path)
    check_checkpoint(path)
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[precision])
    except (OSError, ValueError, KeyError) as error:
        raise ModelNotAvailable(path, f"transformers could not load it: {error}") from error
    if not tokenizer.chat_template:
        raise ModelNotAvailable(path, "the tokenizer has no chat template")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device).eval()
    elapsed = time.perf_counter() - started
    logger.info("loaded %s on %s in %s (%.1f s)", path, device, precision, elapsed)
    return LoadedModel(model, tokenizer, device, precision, elapsed)
