"""Build a small random-weight GLM checkpoint with a chat-capable tokenizer, offline.

Tests, load tests, benchmarks and local development use it in place of ChatGLM3-6B: it goes
through exactly the same loading and generation code (`GlmForCausalLM`, `AutoTokenizer`,
chat template), it just writes nonsense.

`--layout chatglm3` writes ChatGLM3's original layout instead (`model_type: chatglm`,
`transformer.encoder.layers.N...` weights in an indexed set of shards, a SentencePiece
`tokenizer.model` trained here), to exercise the conversion path; `--preset 6b` with it gives the
real model's shapes with random fp16 weights, for GPU benchmarks.

    python scripts/make_tiny_model.py OUT_DIR [--preset tiny|tiny64|bench] [--seed 0]
    python scripts/make_tiny_model.py OUT_DIR --layout chatglm3 [--preset tiny|tiny64|6b]
        [--format bin]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
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
    # ~0.3M parameters: tests load and generate in well under a second.
    "tiny": dict(
        vocab_size=2048,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
    ),
    # ~0.6M parameters with head_dim 64, the smallest vLLM's CPU attention takes (it refuses 16):
    # the vLLM engine's tests.
    "tiny64": dict(
        vocab_size=2048,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
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
    stop_ids = [
        tokenizer.eos_token_id,
        *tokenizer.convert_tokens_to_ids(["<|user|>", "<|observation|>"]),
    ]
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


# ChatGLM3's original config.json, less the shape; `--preset` supplies the shape.
ORIGINAL_CONFIG = {
    "_name_or_path": "THUDM/chatglm3-6b",
    "model_type": "chatglm",
    "architectures": ["ChatGLMModel"],
    "auto_map": {
        "AutoConfig": "configuration_chatglm.ChatGLMConfig",
        "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
        "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
    },
    "add_bias_linear": False,
    "add_qkv_bias": True,
    "apply_query_key_layer_scaling": True,
    "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0,
    "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True,
    "fp32_residual_connection": False,
    "hidden_dropout": 0.0,
    "layernorm_epsilon": 1e-05,
    "multi_query_attention": True,
    "original_rope": True,
    "post_layer_norm": True,
    "rmsnorm": True,
    "seq_length": 8192,
    "use_cache": True,
    "tie_word_embeddings": False,
    "eos_token_id": 2,
    "pad_token_id": 0,
}
ORIGINAL_PRESETS = {
    "tiny": dict(
        num_layers=2,
        hidden_size=64,
        ffn_hidden_size=128,
        num_attention_heads=4,
        kv_channels=16,
        multi_query_group_num=2,
        sentencepiece_vocab=1000,
    ),
    "tiny64": dict(
        num_layers=2,
        hidden_size=128,
        ffn_hidden_size=256,
        num_attention_heads=2,
        kv_channels=64,
        multi_query_group_num=1,
        sentencepiece_vocab=1000,
    ),
    "6b": dict(
        num_layers=28,
        hidden_size=4096,
        ffn_hidden_size=13696,
        num_attention_heads=32,
        kv_channels=128,
        multi_query_group_num=2,
        padded_vocab_size=65024,
        sentencepiece_vocab=1000,
    ),
}


def train_sentencepiece(vocab_size: int) -> bytes:
    """A BPE SentencePiece model set up like ChatGLM3's: byte fallback, whitespace kept as is."""
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TOKENIZER_CORPUS.splitlines() * 4),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="bpe",
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def original_layer_tensors(config: dict, layer: int, dtype, generator) -> dict:
    """One ChatGLM3 block's weights under their original names, random but well scaled."""
    import torch

    hidden, ffn = config["hidden_size"], config["ffn_hidden_size"]
    head_dim = config["kv_channels"]
    qkv_rows = (config["num_attention_heads"] + 2 * config["multi_query_group_num"]) * head_dim

    def random(*shape, scale=hidden**-0.5):
        return (torch.randn(*shape, generator=generator) * scale).to(dtype)

    prefix = f"transformer.encoder.layers.{layer}."
    return {
        prefix + "input_layernorm.weight": 1 + random(hidden, scale=0.1),
        prefix + "self_attention.query_key_value.weight": random(
            qkv_rows, hidden, scale=hidden**-0.5
        ),
        prefix + "self_attention.query_key_value.bias": random(qkv_rows, scale=0.1),
        prefix + "self_attention.dense.weight": random(
            hidden, config["num_attention_heads"] * head_dim
        ),
        prefix + "post_attention_layernorm.weight": 1 + random(hidden, scale=0.1),
        prefix + "mlp.dense_h_to_4h.weight": random(2 * ffn, hidden),
        prefix + "mlp.dense_4h_to_h.weight": random(hidden, ffn, scale=ffn**-0.5),
    }


def original_shards(config: dict, dtype, generator) -> Iterator[dict]:
    """Embedding, one shard per block, final norm and output layer; one in memory at a time."""
    import torch

    hidden, vocab_rows = config["hidden_size"], config["padded_vocab_size"]
    rotary_dim = config["kv_channels"] // 2
    yield {
        "transformer.embedding.word_embeddings.weight": (
            torch.randn(vocab_rows, hidden, generator=generator).to(dtype)
        ),
        "transformer.rotary_pos_emb.inv_freq": 1.0
        / (10000 ** (torch.arange(0, rotary_dim, 2).float() / rotary_dim)),
    }
    for layer in range(config["num_layers"]):
        yield original_layer_tensors(config, layer, dtype, generator)
    yield {
        "transformer.encoder.final_layernorm.weight": torch.ones(hidden, dtype=dtype),
        "transformer.output_layer.weight": (
            torch.randn(vocab_rows, hidden, generator=generator) * hidden**-0.5
        ).to(dtype),
    }


def make_original_chatglm3(
    out_dir: Path, preset: str = "tiny", seed: int = 0, weight_format: str = "safetensors"
) -> Path:
    """Write a random ChatGLM3 checkpoint in the original layout, one shard per block."""
    import torch
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = dict(ORIGINAL_PRESETS[preset])
    sentencepiece_model = train_sentencepiece(shape.pop("sentencepiece_vocab"))
    (out_dir / "tokenizer.model").write_bytes(sentencepiece_model)
    vocab = tokenizer_vocab_size(sentencepiece_model)
    shape.setdefault("padded_vocab_size", -(-vocab // 64) * 64)
    dtype = torch.float16 if preset == "6b" else torch.float32
    config = {**ORIGINAL_CONFIG, **shape, "torch_dtype": str(dtype).removeprefix("torch.")}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]}})
    )

    shards = original_shards(config, dtype, torch.Generator().manual_seed(seed))
    shard_count = config["num_layers"] + 2
    weight_map, total_size = {}, 0
    suffix = "safetensors" if weight_format == "safetensors" else "bin"
    stem = "model" if weight_format == "safetensors" else "pytorch_model"
    for number, tensors in enumerate(shards, start=1):
        name = f"{stem}-{number:05d}-of-{shard_count:05d}.{suffix}"
        if weight_format == "safetensors":
            save_file(tensors, out_dir / name, metadata={"format": "pt"})
        else:
            torch.save(tensors, out_dir / name)
        weight_map.update(dict.fromkeys(tensors, name))
        total_size += sum(t.numel() * t.element_size() for t in tensors.values())
    index_name = f"{stem}.{suffix}.index.json"
    (out_dir / index_name).write_text(
        json.dumps({"metadata": {"total_size": total_size}, "weight_map": weight_map}, indent=2)
    )
    return out_dir


def tokenizer_vocab_size(sentencepiece_model: bytes) -> int:
    """SentencePiece pieces plus ChatGLM3's nine specials."""
    import sentencepiece

    pieces = sentencepiece.SentencePieceProcessor(model_proto=sentencepiece_model).get_piece_size()
    return pieces + len(CHAT_SPECIAL_TOKENS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--layout", choices=["native", "chatglm3"], default="native")
    parser.add_argument("--preset", choices=sorted({*PRESETS, *ORIGINAL_PRESETS}), default="tiny")
    parser.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.layout == "chatglm3":
        if args.preset not in ORIGINAL_PRESETS:
            parser.error(f"--layout chatglm3 takes --preset {sorted(ORIGINAL_PRESETS)}")
        out = make_original_chatglm3(args.out_dir, args.preset, args.seed, args.format)
        print(f"wrote {args.preset} ChatGLM3 checkpoint in the original layout to {out}")
        return 0
    if args.preset not in PRESETS:
        parser.error(f"--layout native takes --preset {sorted(PRESETS)}")
    out = make_tiny_model(args.out_dir, args.preset, args.seed)
    info = json.loads((out / "tiny_model.json").read_text())
    print(f"wrote {args.preset} GLM checkpoint ({info['parameters']:,} parameters) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
