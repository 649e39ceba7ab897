"""What an engine is configured with: a small typed model of its own, free of Ray and of the
storyboard. The service's Settings (on the HTTP side) inherit these fields, so each knob is
defined once, and an engine is handed only this part (`build_engine(config)`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["auto", "fp32", "fp16", "bf16", "int8", "nf4"]
Device = Literal["auto", "cpu", "cuda"]
EngineName = Literal["auto", "static", "continuous", "vllm"]
# Room for the instructions a chat prompt carries around the user's own text (the storyboard
# template is ≈700 tokens): part of every request's KV-cache budget.
PROMPT_TEMPLATE_TOKENS = 1024


class BatchingConfig(BaseModel):
    """Live knobs of dynamic batching: the ChatGLM deployment's `user_config`."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(8, ge=1, le=256, description="Largest batch @serve.batch forms.")
    batch_wait_timeout_s: float = Field(
        0.05, ge=0.0, le=5.0, description="How long a batch waits to fill before it runs."
    )


class EngineConfig(BatchingConfig):
    """One engine serving one local checkpoint: what it loads, how, and what it plans for."""

    model_path: str = Field(
        "models/chatglm3-6b",
        description="Local Hugging Face checkpoint directory. Missing weights → fallback only.",
    )
    precision: Precision = Field(
        "auto",
        description="int8/nf4 quantize with bitsandbytes. auto = fp32 on CPU; on CUDA bf16/fp16 "
        "if the weights plus the KV cache of a full batch (kv_cache_tokens()) fit in free "
        "memory, else int8, else nf4.",
    )
    allow_downgrade: bool = Field(
        True,
        description="On CUDA out-of-memory while loading, free everything and retry at the next "
        "lower precision (fp32 → half → int8 → nf4); /api/model/status reports what happened.",
    )
    device: Device = Field("auto", description="auto = cuda when available, else cpu.")
    torch_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="CPU threads for torch in the model replica; 0 = on CPU every core the "
        "replica may run on (not Ray's OMP_NUM_THREADS = num_cpus = 1), on CUDA torch's default.",
    )
    prefix_cache_entries: int = Field(
        8,
        ge=0,
        le=256,
        description="Prompt prefixes whose KV cache the static engine keeps (least recently used "
        "go): a request starting with one prefills only the rest. 0 = off.",
    )
    prefix_cache_max_tokens: int = Field(
        1024,
        ge=1,
        le=8192,
        description="Longest prompt prefix (in tokens) a prefix-cache entry holds; the entries' "
        "KV (entries × this) is part of the budget precision auto plans for.",
    )
    prefix_cache_min_tokens: int = Field(
        64,
        ge=1,
        le=8192,
        description="Shortest shared prompt prefix (in tokens) worth a prefix-cache entry.",
    )
    engine: EngineName = Field(
        "auto",
        description="How the model replica batches. static: @serve.batch forms a batch and one "
        "generate() call runs it. continuous: transformers' continuous batching, each request "
        "joins and leaves the running batch token by token (no constrained decoding; one "
        "greedy-or-sampling mode from temperature). auto: the one measured faster on the device "
        "— vllm on CUDA when vLLM is installed, else static. vllm: vLLM's AsyncLLM (continuous "
        "batching, paged KV cache, prefix caching, constrained decoding); on CPU only when asked "
        "(`make setup-vllm` builds its venv). See docs/MODEL.md.",
    )
    gpu_memory_utilization: float = Field(
        0.85,
        gt=0.0,
        lt=1.0,
        description="engine vllm on CUDA: share of the GPU's memory vLLM takes for weights, "
        "activations and its KV cache.",
    )
    vllm_max_num_seqs: int = Field(
        64,
        ge=1,
        le=1024,
        description="engine vllm: most requests vLLM runs at once (its max_num_seqs); the KV "
        "cache on CPU is sized for this many requests of the planned length, and the deployment "
        "accepts twice as many.",
    )
    wedged_after_s: float = Field(
        600.0,
        ge=10.0,
        le=86400.0,
        description="check_health fails when one generate() call has run this long.",
    )

    # Sampling defaults, and the budget every request plans for
    max_new_tokens: int = Field(1024, ge=1, le=8192, description="Generation budget per script.")
    temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="0 = greedy decoding (deterministic)."
    )
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    constrained_decoding: bool = Field(
        True,
        description="Constrain generation to the VideoScript JSON schema (xgrammar), so replies "
        "are valid JSON by construction; off = free text, repaired by the parser.",
    )
    max_prompt_tokens: int = Field(
        1536,
        ge=1,
        le=8192,
        description="Longest accepted user text (prompt + style + system prompt) in tokens: "
        "counted by the model's tokenizer when the ingress has it, else estimated conservatively "
        "(one per CJK character, one per 4 characters of ASCII words, one per UTF-8 byte of "
        "other scripts).",
    )

    @model_validator(mode="after")
    def _vllm_engine_loads_no_bitsandbytes(self) -> EngineConfig:
        if self.engine == "vllm" and self.precision in ("int8", "nf4"):
            raise ValueError(
                f"engine 'vllm' does not load precision '{self.precision}' (bitsandbytes "
                "quantization is the static engine's): use precision auto, fp32, fp16 or bf16"
            )
        return self

    @model_validator(mode="after")
    def _continuous_engine_cannot_constrain_decoding(self) -> EngineConfig:
        if self.engine == "continuous" and self.constrained_decoding:
            raise ValueError(
                "engine 'continuous' cannot do constrained_decoding (transformers' continuous "
                "batching runs no per-request logits processors): set constrained_decoding to "
                "false or use engine 'static' or 'auto'"
            )
        return self

    def kv_cache_tokens(self) -> int:
        """KV cache the engine can hold at once: a full batch (per request the template, the
        longest accepted prompt and twice the script budget: a repair turn carries the failed
        reply back) plus the prefix cache's entries."""
        return self.max_batch_size * self.request_tokens() + self.prefix_cache_tokens()

    def request_tokens(self) -> int:
        """KV one request may need: the template, the longest accepted prompt and twice the
        script budget (a repair turn carries the failed reply back)."""
        return PROMPT_TEMPLATE_TOKENS + self.max_prompt_tokens + 2 * self.max_new_tokens

    def prefix_cache_tokens(self) -> int:
        """Most KV the static engine's prefix cache keeps; the other engines have none of it."""
        if self.engine in ("continuous", "vllm"):
            return 0
        return self.prefix_cache_entries * self.prefix_cache_max_tokens
