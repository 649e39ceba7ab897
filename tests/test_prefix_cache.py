"""Prefix caching on the real tiny GLM checkpoint: same tokens out, fewer tokens prefilled."""

from contextlib import contextmanager

import pytest

from deployments.engine import GenerationRequest, StaticBatchingEngine
from deployments.engine.base import never_cancelled
from deployments.engine.prefix_cache import PrefixCache, common_prefix_length
from deployments.engine.static_batching import group_rows
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.prompts import build_messages


def storyboard(prompt: str, **fields) -> GenerationRequest:
    messages = build_messages(ScriptRequest(prompt=prompt, **fields))
    return GenerationRequest(messages, max_new_tokens=10, temperature=0.0)


REQUESTS = [
    storyboard("制作一段关于森林探险的短视频"),
    storyboard("城市夜景延时摄影", num_scenes=4, style="cyberpunk"),
    storyboard("A cat learning to surf", duration_s=20),
    GenerationRequest([{"role": "user", "content": "hi"}], max_new_tokens=10, temperature=0.0),
    storyboard("介绍一款新咖啡机"),
    storyboard("A rainy day in London", num_scenes=3),
]


@contextmanager
def counting_embedded_tokens(engine: StaticBatchingEngine):
    """Counts the token positions the model embeds (i.e. computes) while the block runs."""
    counted = [0]
    embeddings = engine._model.model.get_input_embeddings()
    hook = embeddings.register_forward_hook(
        lambda _m, args, _o: counted.__setitem__(0, counted[0] + args[0].numel())
    )
    try:
        yield counted
    finally:
        hook.remove()


@pytest.fixture(scope="module")
def engines(tiny_model_dir):
    cached = StaticBatchingEngine(str(tiny_model_dir), prefix_cache_min_tokens=32)
    plain = StaticBatchingEngine(str(tiny_model_dir), prefix_cache_entries=0)
    cached.start()
    plain.start()
    return cached, plain


def test_cached_prefixes_give_the_same_greedy_tokens_as_full_prefill(engines):
    cached, plain = engines
    expected = [r.text for r in plain.generate(REQUESTS)]
    # First round discovers the shared instructions; the second starts every storyboard row
    # from the cache, while "hi" (no cached prefix) runs in a call of its own.
    for _ in range(2):
        with counting_embedded_tokens(cached) as embedded:
            results = cached.generate(REQUESTS)
        assert [r.text for r in results] == expected
    with counting_embedded_tokens(plain) as embedded_without_cache:
        plain.generate(REQUESTS)
    assert embedded[0] < embedded_without_cache[0] / 2  # the model really skipped the prefixes
    assert [r.prompt_tokens for r in results] == [r.prompt_tokens for r in plain.generate(REQUESTS)]
    stats = cached.prefix_cache.stats()
    assert stats["hits"] >= 5 and stats["reused_tokens"] > 5 * 200
    assert plain.prefix_cache.stats()["hits"] == 0
    assert cached.status()["prefix_cache"] == cached.prefix_cache.stats()


def test_rows_with_and_without_a_cached_prefix_run_in_separate_calls(engines):
    cached, _ = engines
    cached.generate(REQUESTS)  # the shared instructions are cached from here on
    rows = cached._rows(
        REQUESTS, [never_cancelled] * len(REQUESTS), [None] * len(REQUESTS), outcomes={}
    )
    groups = group_rows(rows)
    assert [[rows[i].prefix is not None for i in group] for group in groups] == [
        [True] * 5,
        [False],
    ]


def test_one_request_at_a_time_reuses_the_prefix_of_earlier_ones(engines, tiny_model_dir):
    plain = engines[1]
    engine = StaticBatchingEngine(str(tiny_model_dir), prefix_cache_min_tokens=32)
    engine.start()
    zh_requests = [REQUESTS[0], REQUESTS[1], REQUESTS[4]]
    for request in zh_requests:
        assert engine.generate([request])[0].text == plain.generate([request])[0].text
    # The first had nothing to share with; the second found the first's instructions.
    assert (engine.prefix_cache.misses, engine.prefix_cache.hits) == (1, 2)


def test_sleep_forgets_the_cache(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), prefix_cache_min_tokens=32)
    engine.start()
    engine.generate(REQUESTS[:2])
    assert engine.prefix_cache.stats()["entries"] >= 1
    engine.sleep()
    assert engine.prefix_cache.stats()["entries"] == 0


@pytest.fixture(scope="module")
def tiny_model(engines):
    return engines[0]._model.model


def test_prefixes_shorter_than_min_tokens_are_not_cached(tiny_model):
    cache = PrefixCache(max_entries=4, min_tokens=8)
    short_shared = [[1, 2, 3, 4, 5, 6, 7, 10, 11], [1, 2, 3, 4, 5, 6, 7, 20, 21]]
    assert cache.assign(short_shared, tiny_model) == [None, None]
    long_shared = [[*range(1, 13), 30], [*range(1, 13), 40]]
    first, second = cache.assign(long_shared, tiny_model)
    assert first is second and first.tokens == tuple(range(1, 13))


def test_the_cache_keeps_at_most_max_entries(tiny_model):
    cache = PrefixCache(max_entries=2, min_tokens=4)
    for start in (100, 200, 300):
        shared = list(range(start, start + 6))
        cache.assign([[*shared, 1], [*shared, 2]], tiny_model)
    assert cache.stats()["entries"] == 2 and cache.stats()["prefilled_prefixes"] == 3


def test_common_prefix_length():
    assert common_prefix_length((1, 2, 3), (1, 2, 4)) == 2
    assert common_prefix_length((1, 2), (1, 2, 3)) == 2
    assert common_prefix_length((5,), (1,)) == 0
    assert common_prefix_length((), (1,)) == 0


def test_entries_hold_at_most_max_tokens(tiny_model):
    cache = PrefixCache(max_entries=4, min_tokens=4, max_tokens=10)
    shared = list(range(100, 130))
    first, second = cache.assign([[*shared, 1], [*shared, 2]], tiny_model)
    assert first is second and first.tokens == tuple(shared[:10])
    assert cache.stats()["cached_tokens"] == 10 and cache.stats()["max_tokens"] == 10
    assert cache.assign([[*shared, 3]], tiny_model)[0] is first  # still a hit


def test_custom_system_prompts_never_evict_the_shared_template(tiny_model):
    """The shared instructions, used by many requests, then a run of new custom system prompts
    (each pair sharing a prefix of its own) that makes the template the least recently used."""
    cache = PrefixCache(max_entries=4, min_tokens=4)
    template = list(range(500, 520))
    for tail in range(3):
        cache.assign([[*template, tail], [*template, tail + 10]], tiny_model)
    for custom in range(10):
        system_prompt = list(range(1000 + 50 * custom, 1000 + 50 * custom + 8))
        cache.assign([[*system_prompt, 1], [*system_prompt, 2]], tiny_model)
    assert cache.stats()["evictions"] > 0
    hit = cache.assign([[*template, 99]], tiny_model)[0]
    assert hit is not None and hit.tokens == tuple(template)


def test_the_prefix_cache_is_part_of_the_kv_budget():
    from deployments.engine.config import EngineConfig

    without = EngineConfig(prefix_cache_entries=0).kv_cache_tokens()
    default = EngineConfig()
    assert default.kv_cache_tokens() - without == 8 * 1024
    assert EngineConfig(prefix_cache_max_tokens=512).kv_cache_tokens() - without == 8 * 512
    continuous = EngineConfig(engine="continuous", constrained_decoding=False)
    assert continuous.kv_cache_tokens() == without  # no prefix cache there


def test_the_engine_takes_prefix_cache_max_tokens_from_its_config(tiny_model_dir):
    from deployments.engine import build_engine
    from deployments.engine.config import EngineConfig

    engine = build_engine(
        EngineConfig(model_path=str(tiny_model_dir), engine="static", prefix_cache_max_tokens=77)
    )
    assert engine.prefix_cache.max_tokens == 77
