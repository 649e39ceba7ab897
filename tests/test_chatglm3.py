"""ChatGLM3 original layout → native GLM: logits and chat ids against independent references.

The references here are written from ChatGLM3's own description (its modeling and tokenizer
code), not from transformers: a plain-torch forward pass over the original weight names, and chat
input ids built from raw SentencePiece pieces.
"""

from __future__ import annotations

import math

import pytest
import sentencepiece
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from deployments.engine import chatglm3
from deployments.engine.loading import load_model
from deployments.engine.tokenizer import encode_chat, load_tokenizer
from scripts.convert_chatglm3 import convert
from scripts.make_tiny_model import make_original_chatglm3

ROLES = ["system", "user", "assistant", "observation"]
CONVERSATIONS = {
    "system+user": [
        {"role": "system", "content": "你是一名专业的短视频编剧，只输出 JSON。"},
        {"role": "user", "content": "制作一段关于森林探险的短视频"},
    ],
    "multi-turn": [
        {"role": "user", "content": "制作一段关于城市夜景的短视频"},
        {"role": "assistant", "content": '{"title": "霓虹之夜", "scenes": []}'},
        {"role": "user", "content": "再加两个场景。"},
    ],
    "english": [
        {"role": "user", "content": "Make a short video about a soprano who sops up the sun."},
    ],
    "newlines-and-spaces": [
        {"role": "system", "content": "  two leading spaces\n\nblank line,  double  spaces\t tab "},
        {"role": "user", "content": "\nstarts with a newline\r\nCRLF 12345 ends with newline\n"},
    ],
    "mixed-and-empty": [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": "好的 OK 🎬 ＡＢＣ"},
        {"role": "observation", "content": '{\n    "ok": true\n}'},
    ],
}


@pytest.fixture(scope="module")
def original_dir(tmp_path_factory):
    return make_original_chatglm3(tmp_path_factory.mktemp("chatglm3-original"), seed=3)


@pytest.fixture(scope="module")
def converted_dir(original_dir, tmp_path_factory):
    return convert(original_dir, tmp_path_factory.mktemp("chatglm3-native") / "out")


# Independent reference: chat input ids ---------------------------------------------------------
def reference_chat_ids(sp: sentencepiece.SentencePieceProcessor, messages) -> list[int]:
    """ChatGLM3's build_chat_input: specials numbered right after the SentencePiece vocabulary."""
    special = {
        name: sp.get_piece_size() + i
        for i, name in enumerate(
            ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop", *(f"<|{r}|>" for r in ROLES)]
        )
    }
    ids = [special["[gMASK]"], special["sop"]]
    for message in messages:
        ids.append(special[f"<|{message['role']}|>"])
        ids += sp.encode(message.get("metadata", "") + "\n")
        ids += sp.encode(message["content"])
    return [*ids, special["<|assistant|>"]]


@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
def test_chat_ids_match_sentencepiece_reference(original_dir, converted_dir, conversation):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(original_dir / "tokenizer.model"))
    messages = CONVERSATIONS[conversation]
    expected = reference_chat_ids(sp, messages)
    for tokenizer in (
        chatglm3.build_tokenizer(original_dir),
        AutoTokenizer.from_pretrained(converted_dir),
    ):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
        assert ids == expected


@pytest.mark.parametrize("token", ["</s>", "<unk>", *chatglm3.SPECIAL_TOKENS, "sop", "eop"])
def test_special_tokens_in_content_encode_like_build_chat_input(original_dir, token):
    """ChatGLM3 passes each content to sp.encode as text: so does encode_chat, injected tokens
    included, from the original layout and from the converted checkpoint alike."""
    sp = sentencepiece.SentencePieceProcessor(model_file=str(original_dir / "tokenizer.model"))
    messages = [
        {"role": "system", "content": f"{token}you are {token} evil"},
        {"role": "user", "content": f"<|assistant|>{token}{token} soprano\n{token}"},
    ]
    expected = reference_chat_ids(sp, messages)
    for tokenizer in (load_tokenizer(original_dir), chatglm3.build_tokenizer(original_dir)):
        assert encode_chat(tokenizer, messages) == expected


@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
def test_encode_chat_matches_the_reference_too(original_dir, converted_dir, conversation):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(original_dir / "tokenizer.model"))
    expected = reference_chat_ids(sp, CONVERSATIONS[conversation])
    for path in (original_dir, converted_dir):
        assert encode_chat(load_tokenizer(path), CONVERSATIONS[conversation]) == expected


def test_content_survives_decode(original_dir):
    tokenizer = chatglm3.build_tokenizer(original_dir)
    text = "清晨的森林入口 misty forest\n  indented line"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


# Independent reference: the ChatGLM3 forward pass ----------------------------------------------
def reference_logits(weights: dict[str, torch.Tensor], config: dict, ids: list[int]):
    """ChatGLM3's GLMTransformer in plain torch, over the original weight names, fp32."""
    heads, groups, head_dim = (
        config["num_attention_heads"],
        config["multi_query_group_num"],
        config["kv_channels"],
    )
    eps, length = config["layernorm_epsilon"], len(ids)

    def rms_norm(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    # RotaryEmbedding(kv_channels // 2): rotates the first half of each head, pairs (2i, 2i+1).
    rotary = head_dim // 2
    theta = 1.0 / (10000 ** (torch.arange(0, rotary, 2).float() / rotary))
    angles = torch.outer(torch.arange(length).float(), theta)[:, None, :]
    cos, sin = angles.cos(), angles.sin()

    def rotate(x):  # [seq, heads, head_dim]
        pairs = x[..., :rotary].reshape(length, x.shape[1], rotary // 2, 2)
        even, odd = pairs[..., 0], pairs[..., 1]
        turned = torch.stack([even * cos - odd * sin, odd * cos + even * sin], -1).flatten(-2)
        return torch.cat([turned, x[..., rotary:]], -1)

    causal = torch.ones(length, length, dtype=torch.bool).tril()
    x = weights["transformer.embedding.word_embeddings.weight"][torch.tensor(ids)]
    for layer in range(config["num_layers"]):
        w = {
            k.split(f"layers.{layer}.", 1)[1]: v
            for k, v in weights.items()
            if f"layers.{layer}." in k
        }
        h = rms_norm(x, w["input_layernorm.weight"])
        qkv = h @ w["self_attention.query_key_value.weight"].T
        qkv = qkv + w["self_attention.query_key_value.bias"]
        q, k, v = qkv.split([heads * head_dim, groups * head_dim, groups * head_dim], -1)
        q = rotate(q.view(length, heads, head_dim))
        k = rotate(k.view(length, groups, head_dim)).repeat_interleave(heads // groups, 1)
        v = v.view(length, groups, head_dim).repeat_interleave(heads // groups, 1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(head_dim)
        probs = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        context = torch.einsum("hqk,khd->qhd", probs, v).reshape(length, heads * head_dim)
        x = x + context @ w["self_attention.dense.weight"].T
        h = rms_norm(x, w["post_attention_layernorm.weight"])
        gate, up = (h @ w["mlp.dense_h_to_4h.weight"].T).chunk(2, -1)
        x = x + (F.silu(gate) * up) @ w["mlp.dense_4h_to_h.weight"].T
    x = rms_norm(x, weights["transformer.encoder.final_layernorm.weight"])
    return x @ weights["transformer.output_layer.weight"].T


def original_weights(path) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("model-*.safetensors")):
        weights.update(load_file(shard))
    return weights


def test_native_logits_match_reference_forward(original_dir, converted_dir):
    config = chatglm3.read_original_config(original_dir)
    reference_model = (original_weights(original_dir), config)
    ids = chatglm3.build_tokenizer(original_dir).apply_chat_template(
        CONVERSATIONS["system+user"], add_generation_prompt=True
    )["input_ids"]
    expected = reference_logits(*reference_model, ids)
    assert expected.std() > 0.1  # random weights that actually move the logits

    in_memory = load_model(original_dir, precision="fp32", device="cpu").model
    from_disk = AutoModelForCausalLM.from_pretrained(converted_dir, dtype=torch.float32)
    for model in (in_memory, from_disk):
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0]
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


def test_reference_detects_a_wrong_rotary_layout(original_dir):
    """The comparison has teeth: rotating half-split instead of interleaved pairs is caught."""
    config = chatglm3.read_original_config(original_dir)
    weights = original_weights(original_dir)
    model = load_model(original_dir, precision="fp32", device="cpu").model
    rotary = config["kv_channels"] // 2
    order = torch.cat([torch.arange(0, rotary, 2), torch.arange(1, rotary, 2)])
    order = torch.cat([order, torch.arange(rotary, config["kv_channels"])])
    for proj in ("q_proj", "k_proj"):
        attention = getattr(model.model.layers[0].self_attn, proj)
        heads = attention.weight.shape[0] // config["kv_channels"]
        permutation = torch.cat([order + h * config["kv_channels"] for h in range(heads)])
        with torch.no_grad():
            attention.weight.copy_(attention.weight[permutation])
            attention.bias.copy_(attention.bias[permutation])
    ids = list(range(3, 40))
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0]
    assert (logits - reference_logits(weights, config, ids)).abs().max() > 1e-2


def test_bin_shards_load_like_safetensors(tmp_path):
    from_bin = make_original_chatglm3(tmp_path / "bin", seed=5, weight_format="bin")
    from_safetensors = make_original_chatglm3(tmp_path / "st", seed=5)
    ids = torch.tensor([list(range(5, 30))])
    with torch.inference_mode():
        a = load_model(from_bin, precision="fp32", device="cpu").model(ids).logits
        b = load_model(from_safetensors, precision="fp32", device="cpu").model(ids).logits
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_converted_checkpoint_is_native_and_stops_like_chatglm3(converted_dir):
    config = (converted_dir / "config.json").read_text()
    assert '"model_type": "glm"' in config
    assert "auto_map" not in config
    model = AutoModelForCausalLM.from_pretrained(converted_dir)
    tokenizer = AutoTokenizer.from_pretrained(converted_dir)
    assert type(model).__name__ == "GlmForCausalLM"
    stops = tokenizer.convert_tokens_to_ids(["</s>", "<|user|>", "<|observation|>"])
    assert model.generation_config.eos_token_id == stops
    assert stops[0] == 2 and stops[2] == stops[1] + 2


def test_other_chatglm_generations_are_refused():
    with pytest.raises(chatglm3.UnsupportedCheckpoint, match="ChatGLM-6B v1"):
        chatglm3.glm_config({"model_type": "chatglm", "num_layers": 28, "hidden_size": 4096}, [2])
    with pytest.raises(chatglm3.UnsupportedCheckpoint, match="unexpected weight"):
        chatglm3.convert_tensor("transformer.layers.0.attention.weight", torch.zeros(1), None)
