"""Text as it is generated: one row's tokens decoded incrementally, stop strings found, and each
new piece handed to the row's sink as soon as it is final.

Both engines feed a `RowText` one generated token at a time (the static engine from a stopping
criterion that sees every step, the continuous engine from the manager's streamed outputs) and
take the row's final text from it, so a streamed row's final text is exactly the concatenation of
the pieces its sink received.

Decoding follows the usual offsets scheme: the new text is `decode(tokens[prefix:])` minus
`decode(tokens[prefix:read])`, so a SentencePiece word's leading space is kept and a character
spread over several byte tokens leaves only once it is whole (a decode ending in U+FFFD waits).
Text that could still become a stop string is held back until it cannot; the stop string itself
is never sent and is cut from the final text (as OpenAI's `stop` does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from deployments.engine.base import GenerationResult, TextDelta, TokenSink

logger = logging.getLogger(__name__)

REPLACEMENT_CHARACTER = "\ufffd"


class GuardedSink:
    """A sink whose failure (its caller's loop gone) is logged once and ends its deltas, never
    the batch; counts what it delivered (a row that already streamed text is not run again)."""

    def __init__(self, sink: TokenSink):
        self.sink: TokenSink | None = sink
        self.delivered = 0

    def __call__(self, delta: TextDelta) -> None:
        if self.sink is None:
            return
        try:
            self.sink(delta)
            self.delivered += 1
        except Exception as error:
            logger.warning("a token sink failed, its row goes on unstreamed: %r", error)
            self.sink = None


class RowText:
    """One row's generated tokens → text, with stop strings and an optional sink."""

    def __init__(self, tokenizer, stop: Sequence[str] = (), sink: TokenSink | None = None):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.longest_stop = max(map(len, self.stop), default=0)
        self.sink = sink
        self.tokens: list[int] = []
        self.text = ""  # decoded so far (and, once stopped, cut before the stop string)
        self.sent = 0  # characters of `text` handed to the sink
        self.stopped = False  # a stop string was generated
        self._prefix = 0
        self._read = 0

    def add(self, token: int) -> bool:
        """Take one generated token (not a stop token); True once a stop string is complete
        (the row should stop: later tokens are ignored)."""
        if self.stopped:
            return True
        self.tokens.append(token)
        prefix_text = self._decode(self.tokens[self._prefix : self._read])
        new_text = self._decode(self.tokens[self._prefix :])
        if len(new_text) <= len(prefix_text) or new_text.endswith(REPLACEMENT_CHARACTER):
            return False  # nothing whole yet (a partial character, or a token with no text)
        start = len(self.text)
        self.text += new_text[len(prefix_text) :]
        self._prefix, self._read = self._read, len(self.tokens)
        if self.stop and self._cut_at_stop(start):
            self._send(len(self.text))
            return True
        self._send(len(self.text) - self._held_back())
        return False

    def finish(
        self, prompt_tokens: int, finish_reason: Literal["stop", "length"]
    ) -> GenerationResult:
        """The row's result once it ended; whatever was held back is sent first."""
        if not self.stopped:
            # Tokens still undecoded (a trailing partial character) come out as a full decode
            # would show them.
            prefix_text = self._decode(self.tokens[self._prefix : self._read])
            rest = self._decode(self.tokens[self._prefix :])[len(prefix_text) :]
            self.text += rest
            self._prefix = self._read = len(self.tokens)
            self._send(len(self.text))
        reason = "stop" if self.stopped else finish_reason
        return GenerationResult(self.text, prompt_tokens, len(self.tokens), reason)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True) if tokens else ""

    def _cut_at_stop(self, start: int) -> bool:
        """Whether a stop string now appears in the text (searched only where new text could
        complete one); the text is cut before the earliest."""
        search_from = max(0, start - self.longest_stop + 1)
        found = [i for i in (self.text.find(s, search_from) for s in self.stop) if i >= 0]
        if not found:
            return False
        self.text = self.text[: min(found)]
        self.stopped = True
        return True

    def _held_back(self) -> int:
        """Characters at the end of the text that begin some stop string (not sent yet)."""
        for length in range(min(self.longest_stop - 1, len(self.text) - self.sent), 0, -1):
            tail = self.text[-length:]
            if any(s.startswith(tail) for s in self.stop):
                return length
        return 0

    def _send(self, upto: int) -> None:
        if upto <= self.sent:
            return
        piece, self.sent = self.text[self.sent : upto], upto
        if self.sink is not None:
            self.sink(TextDelta(piece, len(self.tokens)))
