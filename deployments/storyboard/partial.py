"""Scenes of a storyboard reply while it is still being generated.

`PartialScenes` reads the model's JSON reply piece by piece and hands out each object of its
top-level `"scenes"` array as soon as that object's closing brace arrives, so a client can watch
scenes appear (GET /api/tasks/{id}/events, `event: scene`). One pass over the text in all: the
scanner keeps its place (string and escape state, the bracket stack, the last key) between
pieces. A scene is given as the model wrote it; the finished task's script is the parsed,
validated and normalized one (deployments/storyboard/parser.py), which may differ (a reply
that fails to parse ends in the repair turn or the fallback).
"""

from __future__ import annotations

import json
from typing import Any

SCENES_KEY = "scenes"


class PartialScenes:
    """Feed the reply's text as it grows; get back the scenes completed by each piece."""

    def __init__(self) -> None:
        self.text = ""
        self.scenes: list[dict[str, Any]] = []
        self._position = 0
        self._stack: list[str] = []
        self._in_string = False
        self._escape = False
        self._string_start = 0
        self._last_string: str | None = None
        self._key: str | None = None  # the top-level key whose value comes next
        self._scenes_depth: int | None = None  # stack depth inside the scenes array
        self._object_start: int | None = None

    def feed(self, piece: str) -> list[dict[str, Any]]:
        """Add `piece` to the reply; the scenes it completed (possibly none)."""
        self.text += piece
        completed: list[dict[str, Any]] = []
        text, stack = self.text, self._stack
        for index in range(self._position, len(text)):
            char = text[index]
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                elif char == '"':
                    self._in_string = False
                    self._last_string = text[self._string_start + 1 : index]
                continue
            if char == '"':
                self._in_string, self._string_start = True, index
            elif char == ":":
                self._key = self._last_string if len(stack) == 1 else self._key
            elif char == ",":
                if len(stack) == 1:
                    self._key = None
            elif char in "{[":
                if (
                    char == "["
                    and self._scenes_depth is None
                    and stack == ["{"]
                    and self._key == SCENES_KEY
                ):
                    self._scenes_depth = 2
                stack.append(char)
                if char == "{" and self._scenes_depth is not None and len(stack) == 3:
                    self._object_start = index
            elif char in "}]" and stack:
                stack.pop()
                if self._scenes_depth is None:
                    continue
                if char == "}" and len(stack) == 2 and self._object_start is not None:
                    scene = _as_scene(text[self._object_start : index + 1])
                    self._object_start = None
                    if scene is not None:
                        completed.append(scene)
                elif char == "]" and len(stack) == 1:
                    self._scenes_depth = None  # the array is closed: nothing more to find
        self._position = len(text)
        self.scenes.extend(completed)
        return completed


def _as_scene(text: str) -> dict[str, Any] | None:
    try:
        scene = json.loads(text)
    except ValueError:
        return None
    return scene if isinstance(scene, dict) else None
