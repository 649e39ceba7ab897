"""Summing the model replicas' statuses (serve_app/model_status.py); over HTTP with two real
replicas in tests/test_metrics_scrape.py."""

from __future__ import annotations

from serve_app.model_status import add_up, summarize
from serve_app.protocol import ModelReplicaStatus


def replica(replica_id: str, loaded: bool = True, **counters) -> dict:
    base = {
        "requests": 4,
        "batches": 2,
        "mean_batch_size": 2.0,
        "max_batch_size_seen": 3,
        "generated_tokens": 40,
        "failures": 0,
        "busy_s": 1.25,
        "batch_size_histogram": {"1": 1, "3": 1},
        "oom_batch_splits": 0,
    }
    return {
        "replica_id": replica_id,
        "engine": "static",
        "model_path": "/models/tiny",
        "loaded": loaded,
        "reason": None if loaded else "unloaded",
        "precision": "fp32" if loaded else None,
        "device": "cpu",
        "host_rss_mb": 500.0,
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.05},
        "counters": {**base, **counters},
        "prefix_cache": {
            "entries": 1,
            "max_entries": 8,
            "hits": 3,
            "misses": 1,
            "reused_tokens": 300,
            "prefilled_prefixes": 1,
            "evictions": 0,
            "cached_tokens": 100,
            "max_tokens": 1024,
        },
    }


def test_counters_are_summed_maxima_kept_and_the_mean_recomputed():
    total = add_up(
        [
            replica("a")["counters"],
            replica(
                "b",
                requests=8,
                batches=2,
                max_batch_size_seen=5,
                batch_size_histogram={"3": 1, "5": 1, "10": 0},
            )["counters"],
        ]
    )
    assert total["requests"] == 12 and total["batches"] == 4 and total["generated_tokens"] == 80
    assert total["max_batch_size_seen"] == 5
    assert total["mean_batch_size"] == 3.0
    assert total["busy_s"] == 2.5
    assert total["batch_size_histogram"] == {"1": 1, "3": 2, "5": 1, "10": 0}


def test_summary_names_each_replica_and_is_loaded_when_any_replica_is():
    summary = summarize([replica("b", loaded=False), replica("a")], unreachable=1)
    assert [r["replica_id"] for r in summary["replicas"]] == ["a", "b"]
    assert summary["replica_id"] is None and summary["loaded"] is True
    assert summary["precision"] == "fp32"  # the loaded replica's model fields
    assert summary["reason"] == "1 of 2 replicas not loaded: unloaded"
    assert summary["replicas_unreachable"] == 1
    assert summary["host_rss_mb"] == 1000.0
    assert summary["prefix_cache"]["hits"] == 6 and summary["prefix_cache"]["max_tokens"] == 1024
    for each in summary["replicas"]:
        ModelReplicaStatus.model_validate(each)


def test_one_replica_reads_as_before():
    alone = replica("a", loaded=False)
    summary = summarize([alone])
    assert summary["loaded"] is False and summary["reason"] == "unloaded"
    assert summary["counters"] == alone["counters"]
    assert summary["prefix_cache"] == alone["prefix_cache"]
