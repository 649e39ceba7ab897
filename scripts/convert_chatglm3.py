"""Convert a ChatGLM3 checkpoint from its original layout to a native `GlmForCausalLM` one.

The result loads with `AutoModelForCausalLM.from_pretrained(DST)` and
`AutoTokenizer.from_pretrained(DST)`, no remote code: safetensors shards (one per source shard,
so peak memory is one shard), a fast tokenizer with ChatGLM3's chat template, and a generation
config that stops on </s>, <|user|> and <|observation|>. Serving the original directory works
too (the loader converts in memory); converting once just makes every later load faster.

    python scripts/convert_chatglm3.py models/chatglm3-6b models/chatglm3-6b-glm [--dtype fp16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deployments.engine import chatglm3
from deployments.engine.quantization import DTYPES


def convert(source: Path, destination: Path, dtype: str | None = None) -> Path:
    """Write the native checkpoint to `destination` and return it."""
    if not chatglm3.is_original_layout(source):
        raise SystemExit(f"{source} is not a ChatGLM checkpoint in the original layout")
    if (destination / "config.json").exists():
        raise SystemExit(f"{destination} already holds a checkpoint; choose an empty directory")
    return chatglm3.convert_checkpoint(source, destination, DTYPES[dtype] if dtype else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="original ChatGLM3 directory")
    parser.add_argument("destination", type=Path, help="empty directory for the native checkpoint")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default=None, help="cast weights (default: keep)"
    )
    args = parser.parse_args(argv)
    out = convert(args.source, args.destination, args.dtype)
    print(f"wrote native GlmForCausalLM checkpoint to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
