"""The CPU-side storyboard logic: prompts in, validated scripts out, a fallback when needed.

Everything that knows what a storyboard is lives here (and in the modules it calls), so the
chat deployment stays a general engine.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from deployments.engine import GenerationRequest
from deployments.fallback import build_fallback_script, fallback_script_json
from deployments.prompts import build_messages, build_repair_messages, script_json_schema
from deployments.script_parser import ScriptParseError, parse_script
from serve_app.config import Settings
from serve_app.protocol import ScriptRequest


@serve.deployment(name="ScriptProcessor", max_ongoing_requests=128)
class ScriptProcessor:
    def __init__(self, settings: Settings):
        self.settings = settings
        # jieba builds its dictionary on first use (~0.7 s): pay it here, not in a request.
        build_fallback_script(ScriptRequest(prompt="森林探险短视频"))

    def prepare(self, request: ScriptRequest) -> GenerationRequest:
        """The chat request that asks the model for this storyboard."""
        messages = build_messages(request, self._system_prompt(request))
        return self._generation_request(request, messages)

    def prepare_repair(
        self, request: ScriptRequest, bad_output: str, problem: str
    ) -> GenerationRequest:
        """One more chat request, showing the model its invalid reply and what was wrong."""
        messages = build_repair_messages(request, bad_output, problem, self._system_prompt(request))
        return self._generation_request(request, messages)

    def parse(self, request: ScriptRequest, text: str) -> dict[str, Any]:
        """`{"script": ...}` when the reply holds a valid script, else `{"problem": reason}`."""
        try:
            return {"script": parse_script(text, request).model_dump(mode="json")}
        except ScriptParseError as error:
            return {"problem": str(error)}

    def fallback(self, request: ScriptRequest) -> dict[str, Any]:
        return fallback_script_json(request)

    def _system_prompt(self, request: ScriptRequest) -> str | None:
        """The request's own persona wins over the deployment's."""
        return request.system_prompt or self.settings.system_prompt

    def _generation_request(
        self, request: ScriptRequest, messages: list[dict[str, str]]
    ) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_new_tokens=self.settings.max_new_tokens,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            json_schema=script_json_schema(request) if self.settings.constrained_decoding else None,
            ignore_eos=self.settings.bench_ignore_eos,
        )
