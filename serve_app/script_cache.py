"""A bounded LRU + TTL cache of finished scripts, for deterministic (temperature 0) requests.

The key covers everything that changes the answer: the normalized request, the model, the
prompt template version and the sampling settings. Hit and miss counters feed
/api/model/status.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deployments.storyboard.language import resolve_language
from serve_app.protocol import ScriptRequest


def cache_key(
    request: ScriptRequest, *, model: str, template_version: str, sampling: dict[str, Any]
) -> str:
    """A digest of the normalized request and everything else that shapes the script.

    Requests differing only in whitespace, Unicode width (NFKC), style case or an `auto`
    language that resolves to the same one share a key.
    """
    normalized = {
        "prompt": " ".join(unicodedata.normalize("NFKC", request.prompt).split()),
        "language": resolve_language(request),
        "style": request.style.strip().lower() if request.style else None,
        "duration_s": request.duration_s,
        "num_scenes": request.num_scenes,
        "system_prompt": request.system_prompt,
        "characters": [c.model_dump() for c in request.characters],
        "visual_style": request.visual_style,
        "aspect_ratio": request.aspect_ratio,
        "model": model,
        "template_version": template_version,
        "sampling": sampling,
    }
    canonical = json.dumps(normalized, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class _Entry:
    value: Any
    expires_at: float


class ScriptCache:
    """Thread-safe; values are copied in and out, so callers cannot change what is cached."""

    def __init__(
        self,
        max_entries: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_entries < 1 or ttl_s <= 0:
            raise ValueError("max_entries must be ≥ 1 and ttl_s > 0")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at <= self._clock():
                del self._entries[key]
                self.expirations += 1
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return copy.deepcopy(entry.value)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries[key] = _Entry(copy.deepcopy(value), self._clock() + self.ttl_s)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            lookups = self.hits + self.misses
            return {
                "entries": len(self._entries),
                "max_entries": self.max_entries,
                "ttl_s": self.ttl_s,
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0,
                "evictions": self.evictions,
                "expirations": self.expirations,
            }
