"""verify_setup against the tiny models: passes when ready, names what is wrong when not."""

from __future__ import annotations

import json
import socket

import pytest

from scripts.make_tiny_model import make_original_chatglm3, make_tiny_model
from scripts.verify_setup import main


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def verify(capsys, path, *extra) -> tuple[int, dict]:
    code = main(["--model-path", str(path), "--device", "cpu", "--json", *extra])
    report = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in report["checks"]}


def test_ready_machine_passes(tiny_dir, capsys):
    code, checks = verify(capsys, tiny_dir, "--port", str(free_port()))
    assert code == 0
    assert all(check["ok"] for check in checks.values())
    assert checks["memory"]["detail"].startswith("fp32 (auto)")


def test_original_layout_with_a_missing_shard_fails(tmp_path, capsys):
    path = make_original_chatglm3(tmp_path / "chatglm3")
    next(path.glob("model-00002-*.safetensors")).unlink()
    code, checks = verify(capsys, path, "--port", str(free_port()))
    assert code == 1
    assert not checks["model files"]["ok"]
    assert "model-00002-of-00004.safetensors" in checks["model files"]["detail"]


def test_busy_port_fails_and_the_table_marks_it(tiny_dir, capsys):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["--model-path", str(tiny_dir), "--device", "cpu", "--port", str(port)])
    table = capsys.readouterr().out
    assert code == 1
    assert f"✖ port {port}" in table
    assert "✔ model files" in table
