"""ScriptCache: LRU bound, TTL expiry, counters, copies; cache_key: what it folds together."""

from __future__ import annotations

import pytest

from deployments.storyboard.models import ScriptRequest
from serve_app.script_cache import ScriptCache, cache_key

SAMPLING = {"temperature": 0.0, "top_p": 0.9, "max_new_tokens": 1024}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(request: ScriptRequest, **changes) -> str:
    arguments = {"model": "m", "template_version": "1", "sampling": SAMPLING, **changes}
    return cache_key(request, **arguments)


def test_hit_after_put_and_counters():
    cache = ScriptCache(max_entries=4, ttl_s=60)
    assert cache.get("a") is None
    cache.put("a", {"title": "t"})
    assert cache.get("a") == {"title": "t"}
    assert cache.stats() == {
        "entries": 1, "max_entries": 4, "ttl_s": 60, "hits": 1, "misses": 1, "hit_rate": 0.5,
        "evictions": 0, "expirations": 0,
    }  # fmt: skip


def test_least_recently_used_entry_is_evicted():
    cache = ScriptCache(max_entries=2, ttl_s=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
    assert cache.stats()["evictions"] == 1
    assert len(cache) == 2


def test_entries_expire_after_the_ttl():
    clock = FakeClock()
    cache = ScriptCache(max_entries=2, ttl_s=10, clock=clock)
    cache.put("a", 1)
    clock.now += 9.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert cache.stats()["expirations"] == 1
    assert len(cache) == 0


def test_values_are_copied_in_and_out():
    cache = ScriptCache(max_entries=2, ttl_s=60)
    value = {"scenes": [1]}
    cache.put("a", value)
    value["scenes"].append(2)
    got = cache.get("a")
    got["scenes"].append(3)
    assert cache.get("a") == {"scenes": [1]}


def test_invalid_bounds_are_refused():
    with pytest.raises(ValueError):
        ScriptCache(max_entries=0, ttl_s=1)
    with pytest.raises(ValueError):
        ScriptCache(max_entries=1, ttl_s=0)


def test_equivalent_requests_share_a_key():
    base = ScriptRequest(prompt="制作一段关于森林探险的短视频", style="Cinematic")
    assert key(base) == key(
        ScriptRequest(prompt="  制作一段关于森林探险的短视频 ", style="cinematic")
    )
    assert key(base) == key(ScriptRequest(prompt=base.prompt, style="cinematic", language="zh"))
    assert key(ScriptRequest(prompt="ＡＢＣ video")) == key(ScriptRequest(prompt="ABC   video"))


@pytest.mark.parametrize(
    "other",
    [
        {"request": ScriptRequest(prompt="制作一段关于森林探险的短视频", language="en")},
        {"request": ScriptRequest(prompt="制作一段关于森林探险的短视频", num_scenes=4)},
        {"request": ScriptRequest(prompt="制作一段关于森林探险的短视频", duration_s=60)},
        {"request": ScriptRequest(prompt="制作一段关于森林探险的短视频", system_prompt="p")},
        {"request": ScriptRequest(prompt="制作一段关于沙漠探险的短视频")},
        {
            "request": ScriptRequest(
                prompt="制作一段关于森林探险的短视频",
                characters=[{"name": "小林", "description": "red jacket"}],
            )
        },
        {"request": ScriptRequest(prompt="制作一段关于森林探险的短视频", visual_style="ink")},
        {"request": ScriptRequest(prompt="制作一段关于森林探险的短视频", aspect_ratio="9:16")},
        {"model": "other-model"},
        {"template_version": "2"},
        {"sampling": {**SAMPLING, "max_new_tokens": 512}},
    ],
)
def test_anything_that_changes_the_script_changes_the_key(other: dict):
    base = ScriptRequest(prompt="制作一段关于森林探险的短视频")
    request = other.pop("request", base)
    assert key(request, **other) != key(base)
