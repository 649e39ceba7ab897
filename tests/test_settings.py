from pathlib import Path

import pytest
from pydantic import ValidationError

from serve_app.config import Settings


def test_defaults_are_valid_and_cpu_friendly():
    settings = Settings()
    assert settings.precision == "auto"
    assert settings.max_batch_size >= 1
    assert settings.batching_user_config() == {
        "max_batch_size": settings.max_batch_size,
        "batch_wait_timeout_s": settings.batch_wait_timeout_s,
    }


def test_environment_overrides_config_args(monkeypatch):
    monkeypatch.setenv("VSS_MAX_BATCH_SIZE", "3")
    monkeypatch.setenv("VSS_MODEL_PATH", "/somewhere/else")
    settings = Settings(max_batch_size=16, model_path="models/x", temperature=0.1)
    assert settings.max_batch_size == 3
    assert settings.model_path == "/somewhere/else"
    assert settings.temperature == 0.1  # no env var: the config arg stands


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_batch_size", 0), ("temperature", 5.0), ("precision", "fp8"), ("top_p", 0.0)],
)
def test_out_of_range_values_are_rejected_by_name(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_unknown_config_arg_is_an_error():
    with pytest.raises(ValidationError, match="max_batch"):
        Settings(max_batch=4)


def test_bad_environment_value_names_the_field(monkeypatch):
    monkeypatch.setenv("VSS_MAX_NEW_TOKENS", "lots")
    with pytest.raises(ValidationError, match="max_new_tokens"):
        Settings()


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`VSS_{name.upper()}`" not in readme]
    assert missing == [], f"README's settings table lacks {missing}"


def test_sync_wait_must_outlast_the_generation_deadline():
    with pytest.raises(ValidationError, match="sync_wait_timeout_s"):
        Settings(sync_wait_timeout_s=60, generation_timeout_s=60)
    assert Settings(sync_wait_timeout_s=60, generation_timeout_s=50).generation_timeout_s == 50
