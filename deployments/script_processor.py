"""Parsing the model's replies into validated storyboards, on replicas of their own.

The parser knows what a storyboard is (json repair, field aliases, normalization, validation),
so the chat deployment stays a general engine; prompts and the fallback are cheap enough to be
built where the pipeline runs (serve_app/pipeline.py).
"""

from __future__ import annotations

from typing import Any

from ray import serve

from deployments.fallback import warm_up
from deployments.script_parser import ScriptParseError, parse_script
from serve_app.protocol import ScriptRequest


@serve.deployment(name="ScriptProcessor", max_ongoing_requests=128)
class ScriptProcessor:
    def __init__(self):
        warm_up()  # the parser extracts keywords with jieba

    def parse(self, request: ScriptRequest, text: str) -> dict[str, Any]:
        """`{"script": ...}` when the reply holds a valid script, else `{"problem": reason}`."""
        try:
            return {"script": parse_script(text, request).model_dump(mode="json")}
        except ScriptParseError as error:
            return {"problem": str(error)}
