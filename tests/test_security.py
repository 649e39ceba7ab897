"""Access policy, prompt limits and the request middlewares, without Ray (fast)."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from deployments.storyboard.language import estimated_tokens
from serve_app.config import Settings
from serve_app.errors import FieldError, install_error_handlers
from serve_app.middleware import CORSFromSettingsMiddleware, RequestContextMiddleware
from serve_app.security import (
    AccessPolicy,
    check_prompt_limits,
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


@pytest.mark.parametrize(
    ("text", "tokens"), [("森林探险", 4), ("forest", 2), ("森林 walk", 2 + 2), ("", 0)]
)
def test_token_estimate_counts_cjk_per_character_and_other_text_per_four(text, tokens):
    assert estimated_tokens(text) == tokens


def test_prompt_limits_name_the_field_and_the_unit():
    settings = Settings(max_prompt_chars=10, max_prompt_tokens=3)
    with pytest.raises(FieldError, match="characters"):
        check_prompt_limits("x" * 11, settings)
    with pytest.raises(FieldError, match="tokens") as error:
        check_prompt_limits("森林探险", settings)
    assert error.value.field == "body.prompt"
    check_prompt_limits("森林", settings)


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
