"""/v1 through the official `openai` client, unchanged, against the real app with the tiny model:
models, completions (plain, streamed with usage, JSON schema), OpenAI-shaped errors."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI

pytestmark = pytest.mark.integration

KEY = "openai-test-key"
ADMIN_KEY = "openai-admin-key"
MODEL = "chatglm3-6b-tiny"
HELLO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three forest animals."},
]
SHOTS = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 20},
        "shots": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "camera": {"enum": ["wide", "close", "aerial"]},
                    "seconds": {"type": "integer", "minimum": 1, "maximum": 9},
                    "what": {"type": "string", "maxLength": 12},
                },
                "required": ["camera", "seconds", "what"],
                "additionalProperties": False,
            },
            "minItems": 1,
            "maxItems": 3,
        },
    },
    "required": ["title", "shots"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "shots", "schema": SHOTS, "strict": True},
}


@pytest.fixture(scope="module")
def app(deploy_app, tiny_model_dir):
    return deploy_app(
        model_path=str(tiny_model_dir),
        served_model_name=MODEL,
        api_keys=KEY,
        admin_api_keys=ADMIN_KEY,
        max_new_tokens=64,
    )


@pytest.fixture(scope="module")
def client(app):
    with OpenAI(base_url=f"{app.url}/v1", api_key=KEY, max_retries=0, timeout=120) as client:
        yield client


def greedy(client, **extra):
    return client.chat.completions.create(
        model=MODEL, messages=HELLO, temperature=0, seed=7, max_tokens=24, **extra
    )


def test_models_list_and_retrieve(client):
    [card] = client.models.list().data
    assert card.id == MODEL and card.object == "model"
    assert card.owned_by == "video-script-serve" and card.created > 0
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-4o")
    assert raised.value.code == "model_not_found"


def test_a_completion_with_real_usage(client):
    completion = greedy(client)
    assert completion.object == "chat.completion" and completion.model == MODEL
    [choice] = completion.choices
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert 0 < usage.completion_tokens <= 24
    assert usage.prompt_tokens > 10  # the system and user messages, in the chat template
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert greedy(client).choices[0].message.content == choice.message.content


def test_a_stream_sends_chunks_then_usage_and_equals_the_plain_reply(client):
    plain = greedy(client)
    chunks = list(greedy(client, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    *with_choices, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in with_choices)
    pieces = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    assert len(pieces) >= 2  # text left in pieces as it was generated, not once at the end
    assert "".join(pieces) == plain.choices[0].message.content
    assert with_choices[-1].choices[0].finish_reason == plain.choices[0].finish_reason
    assert last.usage.model_dump() == plain.usage.model_dump()


def test_a_stream_without_usage_has_none(client):
    chunks = list(greedy(client, stream=True))
    assert chunks[-1].choices[0].finish_reason is not None
    assert all(getattr(c, "usage", None) is None for c in chunks)


def test_json_schema_replies_parse_and_validate(client):
    for _ in range(2):  # two samples of the random model, both held to the schema
        completion = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "A shot list for a forest video."}],
            max_completion_tokens=160,
            temperature=1.0,
            response_format=JSON_SCHEMA_FORMAT,
        )
        reply = json.loads(completion.choices[0].message.content)
        jsonschema.validate(reply, SHOTS)
        assert completion.choices[0].finish_reason == "stop"


def test_a_json_schema_stream_arrives_token_by_token_and_validates(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "A shot list."}],
        max_tokens=160,
        temperature=0,
        response_format=JSON_SCHEMA_FORMAT,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    usage = chunks[-1].usage
    # The grammar keeps characters whole, so nearly every token leaves as its own chunk.
    assert len(pieces) >= usage.completion_tokens // 2 >= 5
    jsonschema.validate(json.loads("".join(pieces)), SHOTS)


def test_json_object_replies_are_objects(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=48,
        temperature=0,
        response_format={"type": "json_object"},
    )
    if completion.choices[0].finish_reason == "stop":  # else the budget ended it mid-object
        assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_a_stop_string_cuts_the_reply(client):
    text = greedy(client).choices[0].message.content
    stop = text[2:4]
    cut = greedy(client, stop=[stop, "never-written-stop"])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = list(greedy(client, stop=stop, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text[: text.index(stop)]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"extra_body": {"best_of": 3}}, "best_of"),
        ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, None),
    ],
)
def test_invalid_parameters_are_400_naming_them(client, extra, param):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=HELLO, **extra)
    error = raised.value
    assert error.status_code == 400 and error.type == "invalid_request_error"
    assert error.param == (param or "response_format.json_schema.name")


def test_a_schema_the_grammar_cannot_follow_is_400(client):
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=HELLO, response_format=bad)
    assert raised.value.param == "response_format.json_schema.schema"


def test_an_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert raised.value.code == "model_not_found" and raised.value.param == "model"


def test_a_missing_or_bad_key_is_401_in_openai_shape(app):
    with OpenAI(base_url=f"{app.url}/v1", api_key="wrong", max_retries=0) as stranger:
        with pytest.raises(openai.AuthenticationError) as raised:
            stranger.models.list()
        assert raised.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            stranger.chat.completions.create(model=MODEL, messages=HELLO)
    response = httpx.get(f"{app.url}/v1/models", timeout=30)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    # /api keeps its own shape: a bad body there is still a 422 with fields.
    api = httpx.post(
        f"{app.url}/api/tasks/",
        json={"prompt": ""},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert api.status_code == 422 and "fields" in api.json()["error"]


def test_an_unloaded_model_is_503_with_retry_after(app, client):
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.post(f"{app.url}/api/model/unload", headers=admin, timeout=120).is_success
    try:
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as raised:
                client.chat.completions.create(model=MODEL, messages=HELLO, stream=stream)
            assert raised.value.status_code == 503 and raised.value.code == "model_not_loaded"
            assert int(raised.value.response.headers["retry-after"]) > 0
    finally:
        assert httpx.post(f"{app.url}/api/model/load", headers=admin, timeout=120).is_success
    assert greedy(client).choices[0].message.content
