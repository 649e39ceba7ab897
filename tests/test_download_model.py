"""The real download code against a local stand-in for the Hugging Face Hub (no internet here).

The server speaks the three endpoints huggingface_hub uses: repo info with file metadata, and
HEAD/GET on `resolve/` URLs, with HTTP Range for resumed downloads.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.download_model import main

REPO = "THUDM/chatglm3-6b"
COMMIT = "a" * 40
SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def repo_files() -> dict[str, bytes]:
    weights = {name: os.urandom(200_000 + n) for n, name in enumerate(SHARDS)}
    index = {"metadata": {}, "weight_map": {"a": SHARDS[0], "b": SHARDS[1]}}
    return {
        "config.json": json.dumps({"model_type": "chatglm"}).encode(),
        "tokenizer.model": os.urandom(5_000),
        "model.safetensors.index.json": json.dumps(index).encode(),
        **weights,
        # The same weights again in the older format: skipped when safetensors exist.
        "pytorch_model.bin": os.urandom(1_000),
    }


LFS = ("tokenizer.model", *SHARDS)


class FakeHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.files = dict(files)
        self.served = dict(files)  # what GET returns; differs to simulate corruption
        self.cut_first_get: set[str] = set()  # send 11 MiB, then drop the connection, once
        self.range_requests: list[str] = []
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubHandler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith(f"/api/models/{REPO}/revision/"):
            self.send_json(self.repo_info())
        elif self.path.startswith(f"/api/models/{REPO}/tree/"):
            self.send_json(self.repo_tree())
        else:
            self.send_file(with_body=True)

    def do_HEAD(self):
        self.send_file(with_body=False)

    def repo_info(self) -> dict:
        siblings = []
        for name, content in self.server.files.items():
            sibling = {"rfilename": name, "size": len(content)}
            if name in LFS:
                digest = hashlib.sha256(content).hexdigest()
                sibling["lfs"] = {"sha256": digest, "size": len(content), "pointerSize": 134}
            siblings.append(sibling)
        return {"id": REPO, "modelId": REPO, "sha": COMMIT, "siblings": siblings, "private": False}

    def repo_tree(self) -> list[dict]:
        entries = []
        for sibling in self.repo_info()["siblings"]:
            entry = {"type": "file", "path": sibling["rfilename"], "size": sibling["size"]}
            if lfs := sibling.get("lfs"):
                entry["lfs"] = {"oid": lfs["sha256"], "size": lfs["size"], "pointerSize": 134}
            entries.append({**entry, "oid": "0" * 40})
        return entries

    def send_json(self, payload: dict | list):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, with_body: bool):
        prefix = f"/{REPO}/resolve/{COMMIT}/"
        name = self.path.split("?")[0].removeprefix(prefix)
        if not self.path.startswith(prefix) or name not in self.server.files:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.requests.append((self.command, name))
        content = self.server.served[name]
        start = 0
        if with_body and (range_header := self.headers.get("Range")):
            self.server.range_requests.append(name)
            start = int(range_header.removeprefix("bytes=").split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{hashlib.sha256(self.server.files[name]).hexdigest()}"')
        self.send_header("Content-Length", str(len(content) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        self.end_headers()
        if not with_body:
            return
        if name in self.server.cut_first_get:
            self.server.cut_first_get.discard(name)
            self.wfile.write(content[start : start + 11 * 1024 * 1024])
            self.wfile.flush()
            time.sleep(0.2)  # let the client take in what it got before the line drops
            self.connection.shutdown(2)
            return
        self.wfile.write(content[start:])


@pytest.fixture()
def hub(monkeypatch):
    server = FakeHub(repo_files())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.shutdown()
    server.server_close()


def download(local_dir, *extra) -> int:
    return main(["--local-dir", str(local_dir), "--backoff", "0.01", "--retries", "3", *extra])


def test_downloads_every_file_and_verifies_it(hub, tmp_path):
    assert download(tmp_path / "model") == 0
    for name, content in hub.files.items():
        if name != "pytorch_model.bin":
            assert (tmp_path / "model" / name).read_bytes() == content
    assert not (tmp_path / "model" / "pytorch_model.bin").exists()


def test_a_dropped_connection_resumes_mid_file(hub, tmp_path):
    # huggingface_hub writes in 10 MiB chunks, so only a larger file has progress to resume from.
    hub.files[SHARDS[1]] = hub.served[SHARDS[1]] = os.urandom(12 * 1024 * 1024)
    hub.cut_first_get.add(SHARDS[1])
    assert download(tmp_path / "model") == 0
    assert hub.range_requests == [SHARDS[1]]
    assert (tmp_path / "model" / SHARDS[1]).read_bytes() == hub.files[SHARDS[1]]


def test_a_rerun_skips_files_already_complete(hub, tmp_path):
    assert download(tmp_path / "model") == 0
    hub.requests.clear()
    assert download(tmp_path / "model") == 0
    assert ("GET", SHARDS[0]) not in hub.requests


def test_a_corrupt_shard_fails_verification_and_is_fetched_again(hub, tmp_path, capsys):
    good = hub.files[SHARDS[0]]
    hub.served[SHARDS[0]] = bytes(len(good))  # right size, wrong bytes
    assert download(tmp_path / "model") == 1
    assert "sha256 differs" in capsys.readouterr().err
    hub.served[SHARDS[0]] = good
    assert download(tmp_path / "model") == 0
    assert (tmp_path / "model" / SHARDS[0]).read_bytes() == good


def test_missing_shard_on_the_hub_is_reported(hub, tmp_path, capsys):
    del hub.files[SHARDS[1]]
    assert download(tmp_path / "model") == 1
    assert f"{SHARDS[1]}: named in model.safetensors.index.json but missing" in (
        capsys.readouterr().err
    )


def test_offline_gives_a_clear_message(monkeypatch, tmp_path, capsys):
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there any more
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert download(tmp_path / "model", "--retries", "1") == 2
    err = capsys.readouterr().err
    assert "cannot reach the model hub" in err
    assert "HF_ENDPOINT" in err


def test_auto_download_fetches_a_missing_model_at_replica_start(
    monkeypatch, tmp_path, tiny_model_dir
):
    """The ChatGLM deployment's start-up with `auto_download`: the tiny model, served by the
    stand-in hub, lands at model_path and loads."""
    import asyncio

    from deployments.chatglm import ChatGLMDeployment
    from serve_app.config import Settings

    files = {path.name: path.read_bytes() for path in tiny_model_dir.iterdir() if path.is_file()}
    server = FakeHub(files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    target = tmp_path / "chatglm3-6b"
    try:
        for auto_download, loaded in ((False, False), (True, True)):
            settings = Settings(model_path=str(target), auto_download=auto_download)
            replica = ChatGLMDeployment.func_or_class.__new__(ChatGLMDeployment.func_or_class)
            asyncio.run(replica.__init__(settings))
            assert replica.engine.loaded is loaded, replica.engine.unavailable_reason
    finally:
        server.shutdown()
        server.server_close()
    assert (target / "model.safetensors").read_bytes() == files["model.safetensors"]


def test_auto_download_offline_says_why_and_still_starts(monkeypatch, tmp_path):
    import asyncio

    from deployments.chatglm import ChatGLMDeployment
    from serve_app.config import Settings

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr("deployments.engine.download.time.sleep", lambda _s: None)
    settings = Settings(model_path=str(tmp_path / "none"), auto_download=True)
    replica = ChatGLMDeployment.func_or_class.__new__(ChatGLMDeployment.func_or_class)
    asyncio.run(replica.__init__(settings))
    assert not replica.engine.loaded
    assert replica.engine.unavailable_reason.startswith("auto_download failed: hub unreachable")


def test_verify_never_touches_files_outside_the_model_folder(tmp_path):
    """A hostile mirror names files outside the folder, with wrong sizes so that verify would
    delete them as damaged: absolute, `..`, and through a symlink that points out."""
    from deployments.engine.download import ExpectedFile, verify

    model = tmp_path / "model"
    model.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = [outside / "a.txt", outside / "b.txt", outside / "c.txt"]
    for victim in victims:
        victim.write_text("precious")
    (model / "escape").symlink_to(outside, target_is_directory=True)
    (model / "config.json").write_text("{}")
    (model / "damaged.bin").write_text("x")
    hostile = [
        ExpectedFile(str(victims[0]), 1, None),
        ExpectedFile("../outside/b.txt", 1, None),
        ExpectedFile("escape/c.txt", 1, None),
        ExpectedFile("damaged.bin", 2, None),
    ]
    problems = verify(model, hostile, check_hashes=False)
    assert all(victim.read_text() == "precious" for victim in victims)
    assert not (model / "damaged.bin").exists()  # inside: deleted, so a rerun fetches it
    refused = [p for p in problems if "outside the model folder" in p]
    assert len(refused) == 3


def test_a_weight_index_naming_files_outside_the_folder_is_reported(tmp_path):
    from deployments.engine.download import incomplete_checkpoint

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "secret.safetensors").write_text("x")
    index = {"weight_map": {"a": "../secret.safetensors", "b": "/etc/passwd"}}
    model = tmp_path / "m"
    model.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (model / name).write_text("{}")
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    problems = incomplete_checkpoint(model)
    assert len([p for p in problems if "outside the model folder" in p]) == 2


class RefusingHub(BaseHTTPRequestHandler):
    """A hub that answers every call like a gated repo to a caller without access."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"error": "Access to model THUDM/chatglm3-6b is restricted."}'
        self.send_response(403)
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


def start_replica(settings):
    import asyncio

    from deployments.chatglm import ChatGLMDeployment

    replica = ChatGLMDeployment.func_or_class.__new__(ChatGLMDeployment.func_or_class)
    asyncio.run(replica.__init__(settings))
    return replica


def test_auto_download_from_a_gated_repo_leaves_the_replica_up_and_says_why(monkeypatch, tmp_path):
    from serve_app.config import Settings

    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr("deployments.engine.download.time.sleep", lambda _s: None)
    try:
        replica = start_replica(Settings(model_path=str(tmp_path / "m"), auto_download=True))
    finally:
        server.shutdown()
        server.server_close()
    status = replica.status()
    assert status["loaded"] is False
    assert status["reason"].startswith("auto_download failed: GatedRepoError")


def test_auto_download_into_an_unwritable_folder_leaves_the_replica_up(monkeypatch, tmp_path):
    """The model path lies under a file, so no folder can be made there (root ignores modes)."""
    from serve_app.config import Settings

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    settings = Settings(model_path=str(tmp_path / "a-file" / "model"), auto_download=True)
    replica = start_replica(settings)
    status = replica.status()
    assert status["loaded"] is False
    assert status["reason"].startswith("auto_download failed: NotADirectoryError")
