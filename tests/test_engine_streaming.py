"""Streaming in the engines (engine/streaming.py): text leaves token by token, its pieces add up
to the final text, stop strings cut the reply; on the real tiny checkpoint, no Ray."""

from __future__ import annotations

import threading

import pytest
from conftest import ask

from deployments.engine import StaticBatchingEngine
from deployments.engine.base import GenerationResult, TextDelta
from deployments.engine.continuous_batching import ContinuousBatchingEngine
from deployments.engine.streaming import RowText

PROMPTS = ["制作一段关于森林探险的短视频", "A city at night, neon lights and rain", "hi"]


class Recorder:
    """A sink that keeps every delta and the thread it came on."""

    def __init__(self):
        self.deltas: list[TextDelta] = []
        self.threads: set[int] = set()

    def __call__(self, delta: TextDelta) -> None:
        self.deltas.append(delta)
        self.threads.add(threading.get_ident())

    @property
    def text(self) -> str:
        return "".join(d.text for d in self.deltas)


@pytest.fixture(scope="module")
def static(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    return engine


@pytest.fixture(scope="module")
def continuous(tiny_model_dir):
    engine = ContinuousBatchingEngine(str(tiny_model_dir), device="cpu")
    engine.start()
    yield engine
    engine.sleep()


# The random model writes stray byte tokens that never make a whole character, and text waits
# for whole characters; a grammar keeps its UTF-8 whole, so each token's text can leave at once.
WORDS = {
    "type": "object",
    "properties": {"words": {"type": "array", "items": {"type": "string", "maxLength": 8}}},
    "required": ["words"],
}


def test_static_engine_streams_each_row_token_by_token_and_pieces_add_up(static):
    requests = [ask(p, max_new_tokens=24, json_schema=WORDS) for p in PROMPTS]
    requests[1] = ask(PROMPTS[1], max_new_tokens=24, ignore_eos=True)
    recorders = [Recorder(), None, Recorder()]  # a streamed row shares the batch with one not
    streamed = static.generate(requests, sinks=recorders)
    plain = static.generate(requests)
    for recorder, result, reference in zip(recorders, streamed, plain, strict=True):
        assert isinstance(result, GenerationResult)
        assert result.text == reference.text  # streaming changes nothing in the reply
        assert result.completion_tokens == reference.completion_tokens
        if recorder is None:
            continue
        assert recorder.text == result.text
        counts = [d.completion_tokens for d in recorder.deltas]
        assert counts == sorted(counts) and counts[-1] <= 24
        # Text left as it was generated: a piece at nearly every step, one piece a step at most.
        assert len(counts) >= result.completion_tokens - 4
        assert len(set(counts)) == len(counts)
        assert all(d.text for d in recorder.deltas)
        assert recorder.threads == {threading.get_ident()}  # generate() ran on this thread


def test_static_engine_cuts_the_reply_at_a_stop_string_per_row(static):
    [reference] = static.generate([ask(PROMPTS[0], max_new_tokens=30, ignore_eos=True)])
    text = reference.text
    assert len(text) > 6
    stop = text[3:5]  # appears first at or before index 3
    cut = text[: text.index(stop)]
    recorder = Recorder()
    other = ask(PROMPTS[1], max_new_tokens=30, ignore_eos=True)
    results = static.generate(
        [ask(PROMPTS[0], max_new_tokens=30, ignore_eos=True, stop=(stop,)), other],
        sinks=[recorder, None],
    )
    assert results[0].text == cut
    assert results[0].finish_reason == "stop"
    assert results[0].completion_tokens < 30
    assert recorder.text == cut  # the stop string (and anything after) never left
    # The other row of the batch is untouched by that row's stop string.
    assert results[1].text == static.generate([other])[0].text
    assert results[1].finish_reason == "length"


def test_continuous_engine_streams_and_pieces_add_up(continuous, static):
    request = ask(PROMPTS[0], max_new_tokens=20)
    recorder = Recorder()
    [streamed] = continuous.generate([request], sinks=[recorder])
    [plain] = continuous.generate([request])
    assert streamed.text == plain.text == static.generate([request])[0].text
    assert recorder.text == streamed.text
    counts = [d.completion_tokens for d in recorder.deltas]
    assert len(counts) >= 4 and counts[0] <= 10


def test_continuous_engine_cuts_at_a_stop_string(continuous):
    [reference] = continuous.generate([ask(PROMPTS[1], max_new_tokens=30)])
    stop = reference.text[4:6]
    recorder = Recorder()
    [result] = continuous.generate(
        [ask(PROMPTS[1], max_new_tokens=30, stop=(stop,))], sinks=[recorder]
    )
    assert result.text == reference.text[: reference.text.index(stop)] == recorder.text
    assert result.finish_reason == "stop"


class CharTokenizer:
    """Token i is chr(i); 0xFFFD marks half a character (waits for the next token)."""

    def decode(self, tokens, skip_special_tokens=True):
        out, pending = [], False
        for token in tokens:
            if token == 0xFFFD:
                pending = True
                continue
            out.append(chr(token) if not pending else chr(token).upper())
            pending = False
        return "".join(out) + ("\ufffd" if pending else "")


def test_row_text_holds_back_what_may_be_a_stop_string_and_waits_for_whole_characters():
    sent: list[str] = []
    row = RowText(CharTokenizer(), stop=("xyz",), sink=lambda d: sent.append(d.text))
    for token in map(ord, "abx"):
        assert not row.add(token)
    assert sent == ["a", "b"]  # "x" may start "xyz"
    row.add(ord("q"))
    assert "".join(sent) == "abxq"
    assert not row.add(0xFFFD)  # half a character: nothing yet
    assert "".join(sent) == "abxq"
    row.add(ord("c"))
    assert "".join(sent) == "abxqC"
    for token in map(ord, "xy"):
        row.add(token)
    assert row.add(ord("z"))  # the stop string is complete
    result = row.finish(prompt_tokens=7, finish_reason="length")
    assert result.text == "abxqC" == "".join(sent)
    assert result.finish_reason == "stop"
    assert result.completion_tokens == 9  # every token, the stop string's too


def test_row_text_sends_held_back_text_when_the_row_ends_without_its_stop():
    sent: list[str] = []
    row = RowText(CharTokenizer(), stop=("xyz",), sink=lambda d: sent.append(d.text))
    for token in map(ord, "axy"):
        row.add(token)
    assert "".join(sent) == "a"
    result = row.finish(prompt_tokens=1, finish_reason="length")
    assert result.text == "axy" == "".join(sent)
    assert result.finish_reason == "length"
