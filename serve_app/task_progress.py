"""Where a running task is, written to its store row so any ingress replica can stream it.

The runner's pipeline reports stage changes (and, while the model generates, tokens); a
ProgressReporter turns them into a progress 0–100 that never goes back and writes them with
`TaskStore.set_progress`: a stage change or a completed scene at once, token counts at most
every `task_progress_interval_s`, never two writes of one task at a time (the newest state wins; a
write that fails is logged and the next one carries on). The store refuses a write that would
lower the stored progress, so a late write cannot undo a later one.

It also keeps the draft: the scenes of the reply being generated, completed so far
(`{"draft": n, "scenes": [...]}`, written with the progress, at once when a scene completes). Each
reply the task begins (generating, the repair turn, an adopted task's new attempt) is a new
draft with a higher `n` and no scenes yet, so a stream can tell a new reply from more scenes of
the one it follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from serve_app.protocol import TaskStage

logger = logging.getLogger("ray.serve")

# Progress at the start of each stage; generating fills its band as tokens come.
STAGE_PROGRESS: dict[TaskStage, int] = {
    TaskStage.QUEUED: 5,
    TaskStage.GENERATING: 10,
    TaskStage.PARSING: 70,
    TaskStage.REPAIRING: 75,
    TaskStage.WRITING_FALLBACK: 95,
    TaskStage.COMPLETED: 100,
    TaskStage.FAILED: 100,
}
# Where tokens move the progress: (start, end) of the band, by the stage that generates.
TOKEN_BANDS: dict[TaskStage, tuple[int, int]] = {
    TaskStage.GENERATING: (10, 69),
    TaskStage.REPAIRING: (75, 94),
}

# progress, stage, tokens, the draft when it changed since the last write (else None)
ProgressWrite = Callable[[int, str, int, dict[str, Any] | None], Awaitable[object]]
# The stages that begin a new reply of the model (a new draft).
REPLY_STAGES = frozenset(TOKEN_BANDS)


def progress_for(stage: TaskStage, tokens_in_stage: int, token_budget: int) -> int:
    """The progress a stage has reached after `tokens_in_stage` of at most `token_budget`."""
    band = TOKEN_BANDS.get(stage)
    if band is None or token_budget <= 0:
        return STAGE_PROGRESS[stage]
    start, end = band
    share = min(1.0, max(0, tokens_in_stage) / token_budget)
    return start + int(share * (end - start))


class ProgressReporter:
    """One task's progress, written through `write` (throttled, one write at a time)."""

    def __init__(
        self, write: ProgressWrite, min_interval_s: float, progress: int = 0, draft: int = 0
    ):
        """`progress`, `draft`: where the task's row stands (an adopted task's go on)."""
        self._write = write
        self.min_interval_s = min_interval_s
        self.progress = progress
        self.stage = TaskStage.QUEUED
        self.generated_tokens = 0  # all attempts
        self.draft = draft
        self.scenes: list[dict[str, Any]] = []
        self._draft_dirty = False
        self._tokens_before_stage = 0
        self._dirty = False
        self._urgent = asyncio.Event()
        self._last_write = float("-inf")
        self._writer: asyncio.Task | None = None
        self.writes = 0

    def enter(self, stage: TaskStage) -> None:
        """The pipeline moved to `stage`: written as soon as no other write is in flight."""
        self.stage = stage
        self._tokens_before_stage = self.generated_tokens
        if stage in REPLY_STAGES:
            self.draft += 1
            self.scenes = []
            self._draft_dirty = True
        self._advance(STAGE_PROGRESS[stage])
        self._urgent.set()
        self._schedule()

    def tokens(self, generated_in_stage: int, token_budget: int) -> None:
        """The model has generated `generated_in_stage` tokens of this stage's reply so far."""
        self.generated_tokens = self._tokens_before_stage + generated_in_stage
        self._advance(progress_for(self.stage, generated_in_stage, token_budget))
        self._schedule()

    def scene(self, scene: dict[str, Any]) -> None:
        """The reply being generated completed its next scene: written as soon as no other
        write is in flight, as a stage change (a reply has a handful of scenes)."""
        self.scenes.append(scene)
        self._draft_dirty = True
        self._dirty = True
        self._urgent.set()
        self._schedule()

    def draft_state(self) -> dict[str, Any]:
        return {"draft": self.draft, "scenes": list(self.scenes)}

    async def close(self) -> None:
        """Stop writing (the task's final state is stored by the runner)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def _advance(self, progress: int) -> None:
        self.progress = max(self.progress, progress)
        self._dirty = True

    def _schedule(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_dirty())

    async def _write_while_dirty(self) -> None:
        while self._dirty:
            wait = self._last_write + self.min_interval_s - time.monotonic()
            if wait > 0 and not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), wait)
            self._dirty = False
            self._urgent.clear()
            self._last_write = time.monotonic()
            draft = self.draft_state() if self._draft_dirty else None
            self._draft_dirty = False
            try:
                await self._write(self.progress, self.stage.value, self.generated_tokens, draft)
                self.writes += 1
            except Exception as error:  # progress is advisory: the task goes on
                self._draft_dirty = self._draft_dirty or draft is not None  # the next one tries
                logger.warning("could not record progress: %r", error)
