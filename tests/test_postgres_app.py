"""The Serve app end to end with its tasks in PostgreSQL (task_store_url), on the session's
Ray cluster and private PostgreSQL server: no TaskStore deployment, the ingress's own pool;
tasks created, read, listed, replayed and deleted over HTTP and found in the database; the
server restarted → 503 + Retry-After meanwhile, then tasks are accepted again and none is lost.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from ray import serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database(postgres_server):
    return postgres_server.create_database()


@pytest.fixture(scope="module")
def app(deploy_app, tiny_model_dir, postgres_server, database):
    return deploy_app(
        model_path=str(tiny_model_dir),
        max_new_tokens=32,
        task_lease_s=5,
        task_store_url=postgres_server.url(database),
        task_store_password=postgres_server.password,
    )


def rows_in_postgres(server, database: str) -> dict[str, str]:
    with psycopg.connect(server.dsn(database)) as connection:
        return dict(connection.execute("SELECT task_id, status FROM tasks").fetchall())


def test_tasks_live_in_postgresql_through_the_ingress_pool(app, postgres_server, database):
    deployments = serve.status().applications["video-script"].deployments
    assert "TaskStore" not in deployments and "Ingress" in deployments
    with app.client() as client:
        done = client.post("/api/tasks/?wait=true", json={"prompt": "森林探险的短视频"})
        assert done.status_code == 200, done.text
        task = done.json()
        assert task["status"] == "completed" and task["result"]["scenes"]
        assert client.get(f"/api/tasks/{task['task_id']}").json() == task
        headers = {"Idempotency-Key": "pg-e2e-1"}
        first = client.post("/api/tasks/", json={"prompt": "city night"}, headers=headers)
        again = client.post("/api/tasks/", json={"prompt": "city night"}, headers=headers)
        assert first.status_code in (200, 202) and again.headers["idempotent-replayed"] == "true"
        assert again.json()["task_id"] == first.json()["task_id"]
        listed = client.get("/api/tasks/").json()
        assert listed["total"] == 2
        stored = rows_in_postgres(postgres_server, database)
        assert stored[task["task_id"]] == "completed" and first.json()["task_id"] in stored
        assert client.delete(f"/api/tasks/{task['task_id']}").status_code == 204
        assert client.get(f"/api/tasks/{task['task_id']}").status_code == 404
    assert task["task_id"] not in rows_in_postgres(postgres_server, database)


def test_a_database_restart_is_503_with_retry_after_meanwhile_and_nothing_accepted_is_lost(
    app, postgres_server, database
):
    with app.client(timeout=60) as client:
        before = [
            client.post("/api/tasks/", json={"prompt": f"harbour {i}"}).json()["task_id"]
            for i in range(3)
        ]
        postgres_server.stop()
        try:
            down = [client.post("/api/tasks/", json={"prompt": "pier"}) for _ in range(3)]
        finally:
            postgres_server.start()
        assert [answer.status_code for answer in down] == [503] * 3
        assert all(answer.headers["retry-after"] == "5" for answer in down)
        assert all("task store is unavailable" in a.json()["error"]["message"] for a in down)
        assert all(postgres_server.password not in answer.text for answer in down)
        postgres_server.wait_until_up()
        after = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the pool replaces its dead connections
            after = client.post("/api/tasks/", json={"prompt": "lighthouse"})
            if after.status_code != 503:
                break
            time.sleep(0.5)
        assert after is not None and after.status_code == 202, after.text
        accepted = [*before, after.json()["task_id"]]
        final: dict[str, str] = {}
        deadline = time.monotonic() + 120  # a task whose completion fell in the outage is
        while time.monotonic() < deadline:  # adopted once its 5 s lease runs out
            final = {
                task_id: client.get(f"/api/tasks/{task_id}").json().get("status")
                for task_id in accepted
            }
            if set(final.values()) == {"completed"}:
                break
            time.sleep(1)
    assert final == dict.fromkeys(accepted, "completed")
