"""The engine's one error that callers branch on; its own module so that every other engine
module (tokenizer, loading, engines) can raise it without importing one another."""

from __future__ import annotations

from pathlib import Path


class ModelNotAvailable(RuntimeError):
    """The checkpoint cannot be served; `reason` says why and `path` where we looked."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{reason} (looked at {Path(path).resolve()})")
        self.path = str(Path(path).resolve())
        self.reason = reason

    def __reduce__(self):
        # Crosses Ray process boundaries: rebuild from (path, reason), not from the message.
        return type(self), (self.path, self.reason)
