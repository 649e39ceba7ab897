"""Build a small random-weight GLM checkpoint with a chat-capable tokenizer, offline.

Tests, load tests, benchmarks and local development use it in place of ChatGLM3-6B: it goes
through exactly the same loading and generation code (`GlmForCausalLM`, `AutoTokenizer`,
chat template), it just writes nonsense.

    python scripts/make_tiny_model.py OUT_DIR [--preset tiny|bench] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# ChatGLM3's special tokens, in its order; the roles double as stop tokens.
CHAT_SPECIAL_TOKENS = [
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "sop",
    "eop",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
]
PAD_TOKEN = "<pad>"
EOS_TOKEN = "</s>"

# Same shape as ChatGLM3's prompt: [gMASK]sop, then <|role|>\n content per message.
CHAT_TEMPLATE = (
    "[gMASK]sop"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

PRESETS = {
    # ~0.2M parameters: tests load and generate in well under a second.
    "tiny": dict(
        vocab_size=2048,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
    ),
    # ~25M parameters: large enough that batching matters on a CPU, for `make bench`.
    "bench": dict(
        vocab_size=8192,
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
    ),
}

# Text the byte-level BPE learns its merges from: Chinese and English storyboard language plus
# the JSON keys scripts use, so common words become single tokens.
TOKENIZER_CORPUS = """
制作一段关于森林探险的短视频。清晨的森林入口，薄雾笼罩着高大的树木。探险者背着背包走进森林。
城市夜景，霓虹灯下的街道，行人匆匆走过。美食制作过程，厨师切菜，锅中热油翻滚。
一段产品宣传片，展示新款手机的外观和功能。海边日落，海浪拍打礁石，海鸥飞过天空。
镜头从高空俯瞰山脉，然后慢慢推近到山顶的小屋。旁白：每一次旅程，都从迈出第一步开始。
场景 描述 时长 镜头 动作 旁白 标题 远景 中景 近景 特写 航拍 跟拍 摇镜头 延时摄影
Make a short video about a forest adventure. A hiker walks into a misty forest at dawn.
City lights at night, people walking through neon streets. A chef cooks noodles in a busy kitchen.
A product commercial for a new phone. Sunset over the ocean, waves crash on the rocks.
cinematic wide shot, close up, aerial view, tracking shot, soft golden light, 4k, highly detailed
{"title": "", "language": "zh", "total_duration": 30, "scenes": [{"scene_number": 1,
"description": "", "duration": 5, "camera": "wide shot", "action": "", "narration": "",
"visual_prompt": ""}]}
"""


def build_tokenizer(vocab_size: int):
    """A byte-level BPE (covers every Unicode string) with ChatGLM3-style specials and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(CHAT_SPECIAL_TOKENS),
        special_tokens=[PAD_TOKEN, "<unk>", EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(TOKENIZER_CORPUS.splitlines() * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token=PAD_TOKEN,
        unk_token="<unk>",
        eos_token=EOS_TOKEN,
        additional_special_tokens=CHAT_SPECIAL_TOKENS,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(preset: str, tokenizer, seed: int):
    import torch
    from transformers import GenerationConfig, GlmConfig, GlmForCausalLM

    torch.manual_seed(seed)
    shape = dict(PRESETS[preset])
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    stop_ids = [tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(["<|user|>", "<|observation|>"])]
    config = GlmConfig(
        **shape,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        attention_bias=True,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_ids,
    )
    model = GlmForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    return model


def make_tiny_model(out_dir: Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Write the checkpoint to `out_dir` and return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(PRESETS[preset]["vocab_size"])
    model = build_model(preset, tokenizer, seed)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    parameters = sum(p.numel() for p in model.parameters())
    (out_dir / "tiny_model.json").write_text(
        json.dumps({"preset": preset, "seed": seed, "parameters": parameters}, indent=2)
    )
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = make_tiny_model(args.out_dir, args.preset, args.seed)
    info = json.loads((out / "tiny_model.json").read_text())
    print(f"wrote {args.preset} GLM checkpoint ({info['parameters']:,} parameters) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
