"""Several models in one app (issue 16, items 1-2): two tiny models of different seeds, each its
own ChatGLM-<id> deployment, answer for their own ids on /v1 and on the task API; then a
redeploy of the app with one of them replaced (b → c), under a load of task and chat clients,
loses no accepted task.

A task accepted for a model a redeploy removes still completes: by that model when it runs
before the model is gone, else (adopted by the new ingress after its lease) by the fallback,
fallback_reason `model_unavailable: model 'b' is not served here...`.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "制作一段关于森林探险的短视频"
LOAD_S = 6.0  # clients run this long after the redeploy started (bounded loops below)
FINISH_S = 120.0  # every accepted task finishes within this (lease 5 s, then adoption)


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory) -> Path:
    """A tiny model like tiny_model_dir's, of another seed: the same prompt gets other text."""
    out = tmp_path_factory.mktemp("models") / "tiny-seed1"
    script = ROOT / "scripts" / "make_tiny_model.py"
    subprocess.run([sys.executable, str(script), str(out), "--seed", "1"], check=True)
    return out


def app_args(models: list[dict]) -> dict:
    return {
        "models": models,
        "default_model": models[0]["id"],
        "temperature": 0.0,
        "max_new_tokens": 24,
        "task_lease_s": 5.0,
        "generation_timeout_s": 60.0,
        "sync_wait_timeout_s": 90.0,
    }


def chat(client: httpx.Client, model: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 8,
            "temperature": 0,
        },
    )


def test_each_model_answers_for_its_id_and_a_swap_loses_nothing(
    deploy_app, tiny_model_dir, second_model_dir
):
    models = [
        {"id": "a", "model_path": str(tiny_model_dir)},
        {"id": "b", "model_path": str(second_model_dir)},
    ]
    app = deploy_app(**app_args(models))
    with app.client() as client:
        listed = client.get("/v1/models").json()
        assert [card["id"] for card in listed["data"]] == ["a", "b"]
        replies = {}
        for model in ("a", "b"):
            answer = chat(client, model)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"] == model
            replies[model] = answer.json()["choices"][0]["message"]["content"]
        assert replies["a"] != replies["b"]  # two models, not one behind two names
        missing = chat(client, "zzz")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "model_not_found"

        for model, expected in ((None, "a"), ("b", "b")):
            body = {"prompt": PROMPT} | ({"model": model} if model else {})
            task = client.post("/api/tasks/?wait=true", json=body)
            assert task.status_code == 200, task.text
            assert task.json()["request"]["model"] == expected
            assert task.json()["status"] == "completed"
        unknown = client.post("/api/tasks/", json={"prompt": PROMPT, "model": "zzz"})
        assert unknown.status_code == 422
        assert [f["field"] for f in unknown.json()["error"]["fields"]] == ["body.model"]

        status = client.get("/api/model/status", params={"model": "b"})
        assert status.status_code == 200, status.text
        assert status.json()["model"] == "b"
        assert [(m["id"], m["deployment"], m["loaded"]) for m in status.json()["models"]] == [
            ("a", "ChatGLM-a", True),
            ("b", "ChatGLM-b", True),
        ]
        assert client.get("/api/model/status", params={"model": "zzz"}).status_code == 422

    # Under load, replace b by c (b's weights, another id): one redeploy of the changed config.
    accepted: list[str] = []
    failures: list[str] = []
    swapped = threading.Event()
    stop = threading.Event()

    def clients() -> None:
        with app.client(timeout=60) as client:
            for round_number in range(200):  # bounded; ends LOAD_S after the swap began
                if stop.is_set():
                    return
                model = "b" if round_number % 2 else "a"
                was_swapped = swapped.is_set()
                try:
                    task = client.post("/api/tasks/", json={"prompt": PROMPT, "model": model})
                    answer = chat(client, "a")
                except httpx.HTTPError as error:
                    failures.append(f"{model}: {error!r}")
                    continue
                if task.status_code == 202:
                    accepted.append(task.json()["task_id"])
                elif not (model == "b" and task.status_code == 422 and was_swapped):
                    failures.append(f"task {model}: {task.status_code} {task.text[:200]}")
                if answer.status_code != 200:
                    failures.append(f"chat a: {answer.status_code} {answer.text[:200]}")
                time.sleep(0.05)

    workers = [threading.Thread(target=clients, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    swapped.set()
    replaced = [models[0], {"id": "c", "model_path": str(second_model_dir)}]
    app = deploy_app(**app_args(replaced) | {"task_db_path": app.args["task_db_path"]})
    time.sleep(LOAD_S)
    stop.set()
    for worker in workers:
        worker.join(120)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []
    assert accepted, "no task was accepted under load"

    with app.client() as client:
        deadline = time.monotonic() + FINISH_S
        unfinished = set(accepted)
        sources: dict[str, int] = {}
        while unfinished and time.monotonic() < deadline:
            for task_id in sorted(unfinished):
                task = client.get(f"/api/tasks/{task_id}").json()
                if task["status"] in ("completed", "failed"):
                    unfinished.discard(task_id)
                    assert task["status"] == "completed", task
                    sources[task["source"]] = sources.get(task["source"], 0) + 1
            time.sleep(0.5)
        assert unfinished == set(), f"{len(unfinished)} of {len(accepted)} tasks never finished"
        print(f"\n{len(accepted)} tasks accepted under the swap, all completed: {sources}")

        # After the swap: c answers for its id, b is gone (422 on /api, 404 on /v1).
        assert [card["id"] for card in client.get("/v1/models").json()["data"]] == ["a", "c"]
        answer = chat(client, "c")
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == replies["b"]  # b's weights
        assert chat(client, "b").status_code == 404
        gone = client.post("/api/tasks/", json={"prompt": PROMPT, "model": "b"})
        assert gone.status_code == 422
        task = client.post("/api/tasks/?wait=true", json={"prompt": PROMPT, "model": "c"})
        assert task.status_code == 200 and task.json()["request"]["model"] == "c"
