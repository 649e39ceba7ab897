"""The CPU-side storyboard logic: prompts in, validated scripts out, a fallback when needed.

Everything that knows what a storyboard is lives here (and in the modules it calls), so the
chat deployment stays a general engine.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from deployments.engine import GenerationRequest
from deployments.fallback import build_fallback_script
from deployments.prompts import build_messages, build_repair_messages
from deployments.script_parser import ScriptParseError, parse_script
from serve_app.config import Settings
from serve_app.protocol import ScriptRequest, VideoScript


@serve.deployment(name="ScriptProcessor", max_ongoing_requests=128)
class ScriptProcessor:
    def __init__(self, settings: Settings):
        self.settings = settings

    def prepare(self, request: ScriptRequest) -> GenerationRequest:
        """The chat request that asks the model for this storyboard."""
        return self._generation_request(build_messages(request))

    def prepare_repair(self, request: ScriptRequest, bad_output: str, problem: str):
        """One more chat request, showing the model its invalid reply and what was wrong."""
        return self._generation_request(build_repair_messages(request, bad_output, problem))

    def parse(self, request: ScriptRequest, text: str) -> dict[str, Any]:
        """`{"script": ...}` when the reply holds a valid script, else `{"problem": reason}`."""
        try:
            return {"script": parse_script(text, request).model_dump(mode="json")}
        except ScriptParseError as error:
            return {"problem": str(error)}

    def fallback(self, request: ScriptRequest) -> dict[str, Any]:
        return build_fallback_script(request).model_dump(mode="json")

    def _generation_request(self, messages: list[dict[str, str]]) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_new_tokens=self.settings.max_new_tokens,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            json_schema=VideoScript.model_json_schema(),
        )
