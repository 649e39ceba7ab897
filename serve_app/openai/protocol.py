"""The /v1 contract: OpenAI's chat-completions and models shapes, the subset this service serves,
with validation and /docs examples (data only; serving.py does the work).

What a client may send is checked here: a parameter out of range, of the wrong type or unknown
is a 400 naming it (serve_app/openai/errors.py turns pydantic's errors into OpenAI's shape).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_STOP_SEQUENCES = 4  # as OpenAI
MAX_STOP_CHARS = 256
MAX_MESSAGES = 256
MAX_SCHEMA_NAME_CHARS = 64
SEED_RANGE = (-(2**63), 2**63 - 1)  # what torch.manual_seed takes, and OpenAI's int64


# Errors ------------------------------------------------------------------------------------------
class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(None, description="The request parameter at fault, if one is.")
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """Every /v1 error: `{"error": {"message", "type", "param", "code"}}`."""

    error: OpenAIErrorBody

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "message": "n: only n=1 is supported",
                        "type": "invalid_request_error",
                        "param": "n",
                        "code": "unsupported_value",
                    }
                }
            ]
        }
    )


# Models ------------------------------------------------------------------------------------------
class ModelCard(BaseModel):
    id: str = Field(examples=["chatglm3-6b"])
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the checkpoint was written (its config.json).")
    owned_by: str = Field(examples=["video-script-serve"])


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# Chat completion request -------------------------------------------------------------------------
class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; `developer` is read as `system` (OpenAI's newer name for it)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] = Field(
        description="Text, or a list of text parts (joined); other part types are refused."
    )
    name: str | None = Field(None, max_length=64, description="Accepted and not used.")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = Field(
        False, description="Send one more chunk before [DONE] with the usage (empty choices)."
    )


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class JsonObjectFormat(BaseModel):
    """Any JSON object: decoding is held to the JSON grammar."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["json_object"]


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=MAX_SCHEMA_NAME_CHARS, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] = Field(
        default_factory=dict,
        alias="schema",
        description="A JSON Schema; decoding is constrained to it (xgrammar).",
    )
    strict: bool | None = Field(
        None, description="Accepted; decoding always follows the schema (as strict: true)."
    )


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completion request, the parameters this service serves; any other
    parameter is a 400 naming it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model": "chatglm3-6b",
                    "messages": [
                        {"role": "system", "content": "You write short, vivid answers."},
                        {"role": "user", "content": "Name three forest animals."},
                    ],
                    "max_tokens": 64,
                    "temperature": 0.7,
                    "stream": False,
                },
                {
                    "model": "chatglm3-6b",
                    "messages": [{"role": "user", "content": "A shot list for a forest video."}],
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {
                            "name": "shots",
                            "strict": True,
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "shots": {
                                        "type": "array",
                                        "items": {"type": "string", "maxLength": 40},
                                        "maxItems": 5,
                                    }
                                },
                                "required": ["shots"],
                            },
                        },
                    },
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ]
        },
    )

    model: str = Field(min_length=1, max_length=256, description="See GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(
        None, ge=1, description="Most tokens to generate (cut to what the context leaves)."
    )
    max_completion_tokens: int | None = Field(
        None, ge=1, description="The same as max_tokens (OpenAI's newer name); wins if both."
    )
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 = greedy decoding.")
    top_p: float = Field(1.0, ge=0.0, le=1.0, description="Nucleus mass; 0 = greedy decoding.")
    stop: str | list[str] | None = Field(
        None, description=f"Up to {MAX_STOP_SEQUENCES} strings that end the reply (not included)."
    )
    seed: int | None = Field(
        None,
        ge=SEED_RANGE[0],
        le=SEED_RANGE[1],
        description="Sampling seed, best effort (a batch shares one generator).",
    )
    n: int = Field(1, description="Only 1.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    user: str | None = Field(None, max_length=256, description="Accepted and not used.")
    frequency_penalty: float = Field(0.0, description="Only 0.")
    presence_penalty: float = Field(0.0, description="Only 0.")
    logprobs: bool = Field(False, description="Only false.")

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, value: int) -> int:
        if value != 1:
            raise PydanticCustomError("unsupported_value", "only n=1 is supported")
        return value

    @field_validator("frequency_penalty", "presence_penalty")
    @classmethod
    def _no_penalties(cls, value: float) -> float:
        if value != 0:
            raise PydanticCustomError("unsupported_value", "only 0 is supported")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool) -> bool:
        if value:
            raise PydanticCustomError("unsupported_value", "logprobs are not supported")
        return value

    @field_validator("stop")
    @classmethod
    def _bounded_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > MAX_STOP_SEQUENCES:
            raise PydanticCustomError(
                "too_many", "at most {n} stop sequences", {"n": MAX_STOP_SEQUENCES}
            )
        if any(not s or len(s) > MAX_STOP_CHARS for s in stops):
            raise PydanticCustomError(
                "stop_length", "each stop sequence has 1 to {n} characters", {"n": MAX_STOP_CHARS}
            )
        return value

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise PydanticCustomError(
                "stream_options", "stream_options: only allowed when stream is true"
            )
        return self

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def token_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# Chat completion response ------------------------------------------------------------------------
FinishReason = Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str = Field(examples=["chatcmpl-5f0c3e1a9b2d4c6e8f7a1b2c3d4e5f60"])
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(BaseModel):
    """What a chunk adds; fields left out are not sent."""

    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _without_nones(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed completion (`data: <chunk>`), ended by
    `data: [DONE]`; with include_usage every chunk has `usage: null` but the last, whose
    choices are empty."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
