"""The fallback: a storyboard from templates when the model is absent, fails or writes nonsense."""

from deployments.storyboard.fallback.builder import (
    build_fallback_script,
    fallback_script_json,
    fallback_template,
    warm_up,
)

__all__ = ["build_fallback_script", "fallback_script_json", "fallback_template", "warm_up"]
