"""Access policy, key ids, the refusal to serve the network without keys and the request
middlewares, without Ray (fast). Prompt limits: tests/test_limits.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from serve_app.config import Settings
from serve_app.errors import install_error_handlers
from serve_app.middleware import CORSFromSettingsMiddleware, RequestContextMiddleware
from serve_app.security import (
    AccessPolicy,
    InsecureExposure,
    key_id,
    refuse_unauthenticated_exposure,
    replica_access_policy,
    require_admin_key,
    require_api_key,
)


def test_keys_come_from_the_environment_comma_separated_and_stay_secret(monkeypatch):
    monkeypatch.setenv("VSS_API_KEYS", "alpha, beta,,")
    settings = Settings()
    assert [key.get_secret_value() for key in settings.api_keys] == ["alpha", "beta"]
    assert "alpha" not in repr(settings) and "alpha" not in str(settings.model_dump())


def test_the_policy_reads_the_key_file_and_admin_keys(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nfrom-file\n\n")
    policy = AccessPolicy.from_settings(
        Settings(api_keys=["inline"], api_key_file=key_file, admin_api_keys=["root"])
    )
    assert policy.enabled
    assert policy.accepts("inline") and policy.accepts("from-file") and policy.accepts("root")
    assert not policy.accepts("# team keys") and not policy.accepts("")
    assert policy.accepts_admin("root") and not policy.accepts_admin("inline")


def test_no_keys_means_authentication_is_off():
    assert not AccessPolicy([], []).enabled


@pytest.fixture
def guarded_client() -> TestClient:
    """A small FastAPI app wired with the real dependencies and middlewares."""
    settings = Settings(max_body_bytes=1024, cors_origins=["https://studio.example"])
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, settings_of_request=lambda: settings)
    app.add_middleware(CORSFromSettingsMiddleware, settings_of_request=lambda: settings)
    policy = AccessPolicy([SecretStr("user")], [SecretStr("admin")])
    app.dependency_overrides[replica_access_policy] = lambda: policy

    @app.post("/api/echo", dependencies=[Depends(require_api_key)])
    async def echo(body: dict) -> dict:
        return body

    @app.post("/api/admin", dependencies=[Depends(require_admin_key)])
    async def admin() -> dict:
        return {}

    return TestClient(app)


def test_keys_are_checked_per_route(guarded_client):
    assert guarded_client.post("/api/echo", json={}).status_code == 401
    assert guarded_client.post("/api/echo", json={}, headers=bearer("nope")).status_code == 401
    assert guarded_client.post("/api/echo", json={}, headers=bearer("user")).status_code == 200
    assert guarded_client.post("/api/admin", headers=bearer("user")).status_code == 403
    assert guarded_client.post("/api/admin", headers=bearer("admin")).status_code == 200


def test_bodies_over_the_limit_are_413_whether_declared_or_streamed(guarded_client):
    declared = guarded_client.post("/api/echo", json={"x": "y" * 2000}, headers=bearer("user"))
    assert declared.status_code == 413
    assert declared.json()["error"]["type"] == "payload_too_large"
    streamed = guarded_client.post(
        "/api/echo",
        content=(chunk for chunk in [b'{"x": "', b"y" * 2000, b'"}']),
        headers={**bearer("user"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_cors_answers_only_configured_origins(guarded_client):
    def preflight(origin: str):
        return guarded_client.options(
            "/api/echo",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )

    allowed = preflight("https://studio.example")
    assert allowed.headers["access-control-allow-origin"] == "https://studio.example"
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ROOT = Path(__file__).resolve().parents[1]


def test_the_key_file_is_read_again_when_it_changes(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("first\n")
    policy = AccessPolicy.from_settings(Settings(api_key_file=key_file))
    assert policy.accepts("first") and not policy.accepts("second")
    key_file.write_text("second\n")
    stamp = key_file.stat()
    # Same size and a coarse clock could hide the change; the mtime moves it on for certain.
    os.utime(key_file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert policy.accepts("second") and not policy.accepts("first")


def test_a_key_file_that_vanishes_keeps_the_keys_last_read(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("kept\n")
    policy = AccessPolicy.from_settings(Settings(api_key_file=key_file))
    key_file.unlink()
    assert policy.accepts("kept")


def test_an_empty_key_file_admits_nobody_rather_than_everybody(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# no keys yet\n")
    policy = AccessPolicy.from_settings(Settings(api_key_file=key_file))
    assert policy.enabled and not policy.accepts("")


def test_a_key_id_names_the_key_without_revealing_it():
    assert key_id("alpha") == key_id("alpha") != key_id("beta")
    assert "alpha" not in key_id("alpha") and len(key_id("alpha")) == 24
    assert int(key_id("alpha"), 16) >= 0  # hex


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "my-host.example"])
def test_no_keys_on_a_reachable_address_refuses_to_start_and_says_how_to_fix_it(host):
    with pytest.raises(InsecureExposure) as refused:
        refuse_unauthenticated_exposure(Settings(), host)
    message = str(refused.value)
    assert host in message and "http_options.host" in message
    for setting in ("api_keys", "api_key_file", "allow_unauthenticated", "127.0.0.1"):
        assert setting in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_stays_open_without_keys(host):
    refuse_unauthenticated_exposure(Settings(), host)


def test_keys_or_an_explicit_choice_allow_a_reachable_address(tmp_path):
    refuse_unauthenticated_exposure(Settings(api_keys=["k"]), "0.0.0.0")
    refuse_unauthenticated_exposure(Settings(admin_api_keys=["k"]), "0.0.0.0")
    (tmp_path / "keys").write_text("k\n")
    refuse_unauthenticated_exposure(Settings(api_key_file=tmp_path / "keys"), "0.0.0.0")
    refuse_unauthenticated_exposure(Settings(allow_unauthenticated=True), "0.0.0.0")


def test_the_gpu_config_as_shipped_refuses_to_start_and_the_cpu_profile_starts():
    def check(config_file: str) -> None:
        config = yaml.safe_load((ROOT / config_file).read_text())
        args = config["applications"][0]["args"]
        refuse_unauthenticated_exposure(Settings(**args), config["http_options"]["host"])

    with pytest.raises(InsecureExposure, match=r"0\.0\.0\.0"):
        check("serve_config.yaml")
    check("serve_config.cpu.yaml")
