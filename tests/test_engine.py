"""The static-batching engine on a real tiny GLM checkpoint (no Ray involved)."""

import threading
import time

import pytest
from conftest import ask

from deployments.engine import ModelNotAvailable, StaticBatchingEngine


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir))
    engine.start()
    return engine


def test_batched_greedy_output_equals_one_at_a_time(engine):
    requests = [
        ask("制作一段关于森林探险的短视频", max_new_tokens=12),
        ask(
            "A much longer English prompt about a city at night, with neon lights",
            max_new_tokens=12,
        ),
        ask("hi", max_new_tokens=12),
    ]
    batched = engine.generate(requests)
    alone = [engine.generate([request])[0] for request in requests]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.prompt_tokens for r in batched] == [r.prompt_tokens for r in alone]


def test_each_row_keeps_its_own_token_budget(engine):
    results = engine.generate(
        [ask("a", max_new_tokens=3, ignore_eos=True), ask("b", max_new_tokens=9, ignore_eos=True)]
    )
    assert [r.completion_tokens for r in results] == [3, 9]
    assert all(r.finish_reason == "length" for r in results)


def test_mixed_sampling_settings_in_one_batch_keep_request_order(engine):
    requests = [ask("one", max_new_tokens=4), ask("two", temperature=0.9, max_new_tokens=5)]
    requests.append(ask("three", max_new_tokens=6))
    results = engine.generate(requests)
    assert [r.prompt_tokens for r in results] == [
        engine.generate([r])[0].prompt_tokens for r in requests
    ]


def test_counters_track_batches(engine):
    before = engine.counters.as_dict()
    engine.generate([ask("x", max_new_tokens=2), ask("y", max_new_tokens=2)])
    after = engine.counters.as_dict()
    assert after["batches"] == before["batches"] + 1
    assert after["requests"] == before["requests"] + 2
    assert after["max_batch_size_seen"] >= 2
    assert after["busy_s"] > before["busy_s"]
    assert after["batch_size_histogram"]["2"] == before["batch_size_histogram"].get("2", 0) + 1


def test_status_reports_precision_device_and_memory(engine):
    status = engine.status()
    assert status["loaded"] and status["precision"] == "fp32" and status["device"] == "cpu"
    assert status["parameters"] > 0 and status["host_rss_mb"] > 0


@pytest.mark.parametrize(
    ("layout", "reason"),
    [("missing", "does not exist"), ("empty", "config.json"), ("no-weights", "no weight files")],
)
def test_unusable_checkpoints_say_why(tmp_path, layout, reason):
    path = tmp_path / layout
    if layout != "missing":
        path.mkdir()
    if layout == "no-weights":
        (path / "config.json").write_text("{}")
    engine = StaticBatchingEngine(str(path))
    with pytest.raises(ModelNotAvailable, match=reason):
        engine.start()
    assert not engine.loaded and reason in engine.unavailable_reason
    with pytest.raises(ModelNotAvailable):
        engine.generate([ask("x")])


def test_sleep_frees_the_model_and_wakeup_reloads_it(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir))
    engine.start()
    engine.sleep()
    assert not engine.loaded and engine.status()["reason"] == "unloaded"
    engine.wakeup()
    assert engine.generate([ask("x", max_new_tokens=2)])[0].completion_tokens <= 2


def test_check_health_fails_while_a_generate_call_overruns(tiny_model_dir):
    engine = StaticBatchingEngine(str(tiny_model_dir), wedged_after_s=0.0)
    engine.start()
    engine.check_health()  # idle is healthy
    long_request = ask("x", max_new_tokens=4000, ignore_eos=True)
    worker = threading.Thread(target=engine.generate, args=([long_request],))
    worker.start()
    while engine._busy_since is None and worker.is_alive():
        time.sleep(0.001)
    with pytest.raises(RuntimeError, match="wedged"):
        engine.check_health()
    worker.join()
    engine.check_health()


def test_model_not_available_survives_pickling_across_processes():
    import pickle

    error = pickle.loads(pickle.dumps(ModelNotAvailable("/x/y", "config.json is missing")))
    assert error.reason == "config.json is missing" and error.path == "/x/y"
