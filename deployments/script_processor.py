"""Parsing the model's replies into validated storyboards, on replicas of their own, and the
fallback script when the last reply cannot be used.

The parser knows what a storyboard is (json repair, field aliases, normalization, validation),
so the chat deployment stays a general engine. Prompts are built where the pipeline runs
(the HTTP side's pipeline), and so is the fallback when the model side is down or past its deadline:
that answer must not depend on another remote call.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from deployments.replica_options import SYNC_METHODS_ON_THE_EVENT_LOOP
from deployments.storyboard.fallback import fallback_script_json, warm_up
from deployments.storyboard.models import ScriptRequest
from deployments.storyboard.parser import ScriptParseError, parse_script


@serve.deployment(
    name="ScriptProcessor",
    max_ongoing_requests=128,
    ray_actor_options={"num_cpus": 0.25, "runtime_env": SYNC_METHODS_ON_THE_EVENT_LOOP},
)
class ScriptProcessor:
    def __init__(self):
        warm_up()  # the parser extracts keywords with jieba

    def parse(
        self, request: ScriptRequest, text: str, fallback_on_failure: bool = False
    ) -> dict[str, Any]:
        """`{"script": ...}` when the reply holds a valid script, else `{"problem": reason}`,
        plus `"fallback": script` when asked (the last attempt: no second call for it)."""
        try:
            return {"script": parse_script(text, request).model_dump(mode="json")}
        except ScriptParseError as error:
            failure: dict[str, Any] = {"problem": str(error)}
            if fallback_on_failure:
                failure["fallback"] = fallback_script_json(request)
            return failure
