"""ChatGLM3 in its original layout, served natively as `GlmForCausalLM` without remote code.

ChatGLM3's architecture is GLM's: RMSNorm, grouped-query attention with a q/k/v bias, rotary
embeddings on the first half of each head in interleaved pairs, and a SwiGLU MLP whose fused
`dense_h_to_4h` already stacks gate over up exactly like `GlmMLP.gate_up_proj`. So converting is
a rename plus splitting `query_key_value` into q/k/v, one tensor at a time, which lets both the
in-memory loader and `scripts/convert_chatglm3.py` stream shard by shard.

The tokenizer is rebuilt as a fast tokenizer from the SentencePiece `tokenizer.model`, with a
chat template that reproduces ChatGLM3's `build_chat_input` ids exactly.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

# After the SentencePiece vocabulary come these, in this order (64789… in the real model).
# ChatGLM3 names two of them plain `sop`/`eop`; as added tokens those would also match inside
# words such as "soprano", so the fast tokenizer spells them `<sop>`/`<eop>`. Ids are unchanged.
SPECIAL_TOKENS = [
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
]
STOP_TOKENS = ["</s>", "<|user|>", "<|observation|>"]

# ChatGLM3 encodes each message as <|role|> + sp.encode(metadata + "\n") + sp.encode(content).
# The fast tokenizer prefixes every text chunk between special tokens with SentencePiece's dummy
# "▁", so the single space before the content stands for the dummy prefix of its own encode();
# "\n" is a byte-fallback piece that never merges, so the two encodes cannot fuse.
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message.get('metadata', '') }}\n"
    "{% if message['content'] %} {{ message['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

LAYER_NAME = re.compile(r"transformer\.encoder\.layers\.(\d+)\.(.+)")
LAYER_RENAMES = {
    "input_layernorm.weight": "input_layernorm.weight",
    "self_attention.dense.weight": "self_attn.o_proj.weight",
    "post_attention_layernorm.weight": "post_attention_layernorm.weight",
    "mlp.dense_h_to_4h.weight": "mlp.gate_up_proj.weight",
    "mlp.dense_4h_to_h.weight": "mlp.down_proj.weight",
}
TOP_LEVEL_RENAMES = {
    "transformer.embedding.word_embeddings.weight": "model.embed_tokens.weight",
    "transformer.encoder.final_layernorm.weight": "model.norm.weight",
    "transformer.output_layer.weight": "lm_head.weight",
}
# Buffers the original checkpoint saves but GlmForCausalLM recomputes from its config.
DROPPED = {"transformer.rotary_pos_emb.inv_freq"}
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")


class UnsupportedCheckpoint(ValueError):
    """The directory looks like ChatGLM but is not a ChatGLM3-architecture checkpoint."""


def is_original_layout(path: Path) -> bool:
    """True for a ChatGLM-family directory as THUDM/zai-org publish it (`model_type: chatglm`)."""
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return False
    return json.loads(config_file.read_text()).get("model_type") == "chatglm"


def read_original_config(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / "config.json").read_text())


def glm_config(original: dict[str, Any], eos_token_ids: list[int]):
    """Map ChatGLM3's config onto `GlmConfig`; refuse variants GLM cannot express."""
    from transformers import GlmConfig

    required = (
        "num_layers",
        "hidden_size",
        "ffn_hidden_size",
        "num_attention_heads",
        "kv_channels",
    )
    missing = [key for key in required if key not in original]
    if missing:
        raise UnsupportedCheckpoint(
            f"config.json lacks {missing}: not a ChatGLM2/3-architecture checkpoint "
            "(ChatGLM-6B v1 is not supported)"
        )
    expected = {
        "rmsnorm": True,
        "add_bias_linear": False,
        "apply_residual_connection_post_layernorm": False,
        "post_layer_norm": True,
    }
    differing = {k: original[k] for k, v in expected.items() if original.get(k, v) != v}
    if differing:
        raise UnsupportedCheckpoint(f"unsupported ChatGLM variant: {differing}")
    heads = original["num_attention_heads"]
    kv_heads = original["multi_query_group_num"] if original.get("multi_query_attention") else heads
    return GlmConfig(
        vocab_size=original.get("padded_vocab_size", original.get("vocab_size")),
        hidden_size=original["hidden_size"],
        intermediate_size=original["ffn_hidden_size"],
        num_hidden_layers=original["num_layers"],
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=original["kv_channels"],
        hidden_act="silu",
        max_position_embeddings=original.get("seq_length", 8192),
        rms_norm_eps=original.get("layernorm_epsilon", 1e-5),
        attention_bias=original.get("add_qkv_bias", True),
        tie_word_embeddings=False,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0 * original.get("rope_ratio", 1),
            "partial_rotary_factor": 0.5,
        },
        pad_token_id=original.get("pad_token_id", 0),
        eos_token_id=eos_token_ids,
        bos_token_id=None,
    )


def convert_tensor(name: str, tensor: torch.Tensor, config) -> dict[str, torch.Tensor]:
    """One original tensor → its GlmForCausalLM name(s); views, so nothing is copied here."""
    if name in DROPPED:
        return {}
    if name in TOP_LEVEL_RENAMES:
        return {TOP_LEVEL_RENAMES[name]: tensor}
    match = LAYER_NAME.fullmatch(name)
    if match is None:
        raise UnsupportedCheckpoint(f"unexpected weight {name!r} in a ChatGLM3 checkpoint")
    layer, rest = match.groups()
    prefix = f"model.layers.{layer}."
    if rest in LAYER_RENAMES:
        return {prefix + LAYER_RENAMES[rest]: tensor}
    if rest.startswith("self_attention.query_key_value."):
        kind = rest.rsplit(".", 1)[1]  # weight or bias
        q_rows = config.num_attention_heads * config.head_dim
        kv_rows = config.num_key_value_heads * config.head_dim
        q, k, v = torch.split(tensor, [q_rows, kv_rows, kv_rows], dim=0)
        return {
            f"{prefix}self_attn.{p}_proj.{kind}": t for p, t in zip("qkv", (q, k, v), strict=True)
        }
    raise UnsupportedCheckpoint(f"unexpected weight {name!r} in a ChatGLM3 checkpoint")


def weight_files(path: Path) -> list[Path]:
    """The checkpoint's shards in order, safetensors preferred when both formats are present."""
    path = Path(path)
    for index_name in INDEX_FILES:
        index_file = path / index_name
        if index_file.is_file():
            weight_map = json.loads(index_file.read_text())["weight_map"]
            return [path / name for name in sorted(set(weight_map.values()))]
    for single in SINGLE_FILES:
        if (path / single).is_file():
            return [path / single]
    raise FileNotFoundError(f"no weight index or weight file in {path}")


def read_shard(shard: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Tensors of one shard, one at a time (safetensors) or memory-mapped (.bin)."""
    if shard.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(shard, framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield name, handle.get_tensor(name)
    else:
        state = torch.load(shard, map_location="cpu", mmap=True, weights_only=True)
        yield from state.items()


def converted_shards(
    path: Path, config, dtype: torch.dtype | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Each shard converted to GLM names as owned, contiguous tensors (cast to `dtype` if given)."""
    for shard in weight_files(path):
        converted: dict[str, torch.Tensor] = {}
        for name, tensor in read_shard(shard):
            for new_name, piece in convert_tensor(name, tensor, config).items():
                converted[new_name] = torch.empty_like(
                    piece, dtype=dtype or piece.dtype, memory_format=torch.contiguous_format
                ).copy_(piece)
        yield converted


def converted_state_dict(path: Path, config, dtype: torch.dtype | None = None):
    """The whole checkpoint in GLM names; peak host memory is one copy plus one shard."""
    state: dict[str, torch.Tensor] = {}
    for shard in converted_shards(path, config, dtype):
        state.update(shard)
    return state


def build_tokenizer(path: Path):
    """A fast tokenizer from `tokenizer.model` that encodes exactly like ChatGLM3's SPTokenizer."""
    from sentencepiece import sentencepiece_model_pb2
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SpmConverter

    model_file = Path(path) / "tokenizer.model"
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file} is missing")
    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(model_file.read_bytes())
    except Exception as error:  # protobuf raises its own DecodeError
        raise UnsupportedCheckpoint(f"{model_file} is not a SentencePiece model") from error
    vocab = {piece.piece: index for index, piece in enumerate(proto.pieces)}
    # legacy=True: every chunk between special tokens gets the dummy prefix, as each of
    # ChatGLM3's separate sp.encode() calls does.
    if "legacy" in inspect.signature(SpmConverter.build_tokenizer_from_spm_proto).parameters:
        backend = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    else:
        backend = spm_bpe_backend(proto, vocab)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token=proto.trainer_spec.unk_piece,
        eos_token=proto.trainer_spec.eos_piece,
        pad_token=proto.trainer_spec.unk_piece,  # ChatGLM3 pads with id 0, <unk>
        additional_special_tokens=SPECIAL_TOKENS,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    first_special = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS[0])
    if first_special != len(proto.pieces):
        raise UnsupportedCheckpoint("special tokens did not land right after the vocabulary")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def spm_bpe_backend(proto, vocab: dict[str, int]):
    """The `tokenizers` backend of a SentencePiece BPE model, encoding as `sp.encode` does with
    the dummy prefix on every chunk, for transformers releases before 5.2x whose
    `build_tokenizer_from_spm_proto` has no `legacy` and builds BPE without merges or dummy
    prefix (vLLM pins transformers < 5.20). Same construction as the newer release: merges
    ranked by piece score, SentencePiece's normalizer order, Metaspace prefixing every chunk."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    spec = proto.normalizer_spec
    normal = {p.piece: (p.score, i) for i, p in enumerate(proto.pieces) if p.type == 1}
    if any(p.type == 4 for p in proto.pieces) or proto.trainer_spec.model_type != 2:
        raise UnsupportedCheckpoint("tokenizer.model is not a plain SentencePiece BPE model")
    ranked = [
        (-score, index, token[:split], token[split:])
        for token, (score, index) in normal.items()
        for split in range(1, len(token))
        if token[:split] in normal and token[split:] in normal
    ]
    merges = [(left, right) for _, _, left, right in sorted(ranked)]
    backend = Tokenizer(
        BPE(
            vocab=vocab,
            merges=merges,
            unk_token=proto.trainer_spec.unk_piece,
            fuse_unk=True,
            byte_fallback=proto.trainer_spec.byte_fallback,
        )
    )
    steps = []
    if spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
    if spec.remove_extra_whitespaces:
        steps += [
            normalizers.Replace(Regex(r"\A +| +\z"), ""),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    if spec.escape_whitespaces:
        steps.append(normalizers.Replace(" ", "▁"))
    if spec.add_dummy_prefix:
        steps.append(normalizers.Replace(Regex(r"\A▁"), "▁▁"))  # Metaspace skips a leading ▁
        backend.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement="▁", prepend_scheme="always", split=False
        )
    backend.normalizer = normalizers.Sequence(steps)
    pieces = [decoders.Replace("▁", " ")]
    if proto.trainer_spec.byte_fallback:
        pieces.append(decoders.ByteFallback())
    pieces.append(decoders.Fuse())
    if spec.add_dummy_prefix:
        pieces.append(decoders.Strip(content=" ", left=1))
    backend.decoder = decoders.Sequence(pieces)
    return backend


def stop_token_ids(tokenizer) -> list[int]:
    return tokenizer.convert_tokens_to_ids(STOP_TOKENS)


def generation_config(tokenizer):
    from transformers import GenerationConfig

    return GenerationConfig(
        eos_token_id=stop_token_ids(tokenizer), pad_token_id=tokenizer.pad_token_id
    )


def native_config(path: Path, tokenizer):
    """GlmConfig for the original checkpoint at `path`."""
    return glm_config(read_original_config(path), stop_token_ids(tokenizer))


def convert_checkpoint(source: Path, destination: Path, dtype: torch.dtype | None = None) -> Path:
    """Write `source` (original layout) to `destination` as a native GlmForCausalLM checkpoint
    (loads with `from_pretrained`, no remote code): one safetensors shard per source shard, so
    peak memory is one shard; a fast tokenizer with the chat template; the stop tokens."""
    from safetensors.torch import save_file

    source, destination = Path(source), Path(destination)
    if not is_original_layout(source):
        raise UnsupportedCheckpoint(f"{source} is not a ChatGLM checkpoint in the original layout")
    if (destination / "config.json").exists():
        raise FileExistsError(f"{destination} already holds a checkpoint")
    destination.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(source)
    config = native_config(source, tokenizer)
    shard_count = len(weight_files(source))
    weight_map: dict[str, str] = {}
    total_size = 0
    stored_dtype = None
    for number, tensors in enumerate(converted_shards(source, config, dtype), start=1):
        name = f"model-{number:05d}-of-{shard_count:05d}.safetensors"
        save_file(tensors, destination / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        total_size += sum(t.numel() * t.element_size() for t in tensors.values())
        stored_dtype = stored_dtype or next(iter(tensors.values())).dtype
    index = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (destination / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config.architectures = ["GlmForCausalLM"]
    config.dtype = stored_dtype
    config.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    generation_config(tokenizer).save_pretrained(destination)
    return destination


def converted_copy(source: Path) -> Path:
    """The native checkpoint of an original-layout `source`, converted once into the cache folder
    `<source>-glm` next to it (engines that load only native checkpoints, vLLM, use it). The
    conversion is written to a temporary folder and renamed into place, so an interrupted one is
    never taken for a finished one."""
    import shutil
    import tempfile

    source = Path(source).resolve()
    cache = source.with_name(f"{source.name}-glm")
    if (cache / "config.json").is_file():
        return cache
    scratch = Path(tempfile.mkdtemp(prefix=f".{source.name}-glm-", dir=source.parent))
    try:
        convert_checkpoint(source, scratch / "model")
        try:
            (scratch / "model").rename(cache)
        except OSError:  # another process finished first
            if not (cache / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cache
