"""docs/TROUBLESHOOTING.md covers every error the code can emit.

Nothing here is a hand-kept list of errors: they are read from the code.

- Error `type`s: `/api`'s from `serve_app.errors.ERROR_TYPES` (and what `error_response` answers
  for a status outside it), `/v1`'s from `serve_app.openai.errors.ERROR_TYPES`; each needs its
  anchor (`api-<type>`, `v1-<type>`). Every `"type"` written by hand into an error body (the SSE
  `error` event) must be one of `/api`'s.
- `/v1` error `code`s: every literal `code` an `OpenAIError` is built with, and
  `HTTP_ERROR_CODES`; anchor `v1-code-<code>`.
- `fallback_reason` kinds (`serve_app.metrics.FALLBACK_REASONS`, anchor `fallback-<kind>`); every
  reason the code writes must start with one of them.
- Webhook delivery states (the `WebhookDelivery.state` vocabulary, anchor `webhook-<state>`).
- Precision: every step of the out-of-memory ladder (`next_lower_precision`) written as
  `` `from` → `to` `` and every `precision` value (anchor `precision-<value>`).
- Messages: walking the AST of serve_app/ and deployments/, every message built for a client,
  a task, an edit, a webhook, the health check or a startup refusal. Which calls build one is
  derived too: the exceptions the error handlers catch (`exception_handler(X)`), the helpers
  that build the error body (`error_response`, `OpenAIError`), their subclasses, and project
  exceptions whose message a handler or an `isinstance` branch forwards into one of those. Plus
  the model's not-loaded reasons (`ModelNotAvailable`, `unavailable_reason = ...`), a task's or
  an edit's failure (`.fail(`, `.cancel(`, `reason = ...`, `last_error = ...`), settings
  validators (`raise` inside a `*_validator` in a `config.py`) and the startup refusals listed in
  STARTUP_REFUSALS. A message is identified by its first literal fragment of 8 characters or
  more, at most 8 words of it (what an operator can search for: `f"task {id!r} has no script
  to export ({status})"` → `has no script to export`); the guide must quote it.
"""

from __future__ import annotations

import ast
import json
import re
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.engine import quantization
from deployments.engine.config import Precision
from serve_app import errors as api_errors
from serve_app import metrics as serve_metrics
from serve_app.openai import errors as openai_errors
from serve_app.protocol import WebhookDelivery

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "TROUBLESHOOTING.md"
SOURCES = ("serve_app", "deployments")
# Refusals that stop the app or a replica from starting, raised outside any HTTP handler: the
# classes, not their messages (each message raised with them is collected).
STARTUP_REFUSALS = {"InsecureExposure", "SchemaTooNew", "UnsupportedStoreUrl"}
# The model's not-loaded reasons (health `degraded`, /api/model/status, fallback_reason).
MODEL_REASONS = {"ModelNotAvailable", "UnsupportedCheckpoint"}
# Outside the project: the message's position among the constructor's arguments.
EXTERNAL_SINKS = {"HTTPException": 1}
MESSAGE_PARAMS = ("message", "problem", "reason", "detail", "error")
# Assignments whose value is a message or reason shown to someone (a task's error, a webhook's
# last error, the model's not-loaded reason, a fallback reason, a /v1 error's message).
REASON_TARGETS = {"reason", "unavailable_reason", "last_error", "message"}
# Calls that fail or cancel a task or an edit with a reason (its second argument).
FAILING_CALLS = {"fail", "_fail", "cancel"}
MIN_KEY_CHARS = 8
KEY_WORDS = 8
KEY_STRIP = " \t\n'\"()[]{}:;,.!?-—"


@dataclass(frozen=True)
class Message:
    key: str
    where: str
    kind: str


def python_files() -> list[Path]:
    return sorted(p for source in SOURCES for p in (ROOT / source).rglob("*.py"))


def parsed() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in python_files()}


def call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def module_strings(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level NAME = <string expression>."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                names[target.id] = node.value
    return names


def fragments(node: ast.expr | None, constants: dict[str, ast.expr], depth: int = 0) -> list[str]:
    """The literal pieces of a string expression (f-string parts, `+`, `or`, `[:n]`, constants
    of the module)."""
    if node is None or depth > 4:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return fragments(node.left, constants, depth + 1) + fragments(
            node.right, constants, depth + 1
        )
    if isinstance(node, ast.Subscript):
        return fragments(node.value, constants, depth + 1)
    if isinstance(node, ast.Name) and node.id in constants:
        return fragments(constants[node.id], constants, depth + 1)
    return []


def message_keys(node: ast.expr | None, constants: dict[str, ast.expr]) -> list[str]:
    """What identifies a message: its first literal fragment of MIN_KEY_CHARS or more, at most
    KEY_WORDS words of it (one per `or` branch)."""
    if isinstance(node, ast.BoolOp):
        return [key for value in node.values for key in message_keys(value, constants)]
    if isinstance(node, ast.IfExp):
        return message_keys(node.body, constants) + message_keys(node.orelse, constants)
    pieces = [normalize(piece).strip(KEY_STRIP) for piece in fragments(node, constants)]
    first = next((piece for piece in pieces if len(piece) >= MIN_KEY_CHARS), None)
    return [] if first is None else [" ".join(first.split(" ")[:KEY_WORDS]).strip(KEY_STRIP)]


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", ""))


def argument(node: ast.Call, index: int, names: tuple[str, ...] = MESSAGE_PARAMS) -> ast.expr:
    for keyword in node.keywords:
        if keyword.arg in names:
            return keyword.value
    return node.args[index] if len(node.args) > index else None


def message_index(definition: ast.FunctionDef | None) -> int:
    """The message's position in a project callable's arguments (self not counted)."""
    if definition is None:
        return 0
    params = [a.arg for a in definition.args.args if a.arg not in ("self", "cls")]
    return next((i for i, name in enumerate(params) if name in MESSAGE_PARAMS), 0)


class Code:
    """What the AST of serve_app/ and deployments/ says about building errors."""

    def __init__(self):
        self.trees = parsed()
        self.classes: dict[str, ast.ClassDef] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        for tree in self.trees.values():
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    self.classes[node.name] = node
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, node)
        self.sinks = self._sinks()

    def init_of(self, name: str) -> ast.FunctionDef | None:
        cls = self.classes.get(name)
        if cls is None:
            return None
        return next(
            (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"),
            None,
        )

    def index_of(self, name: str) -> int:
        if name in EXTERNAL_SINKS:
            return EXTERNAL_SINKS[name]
        if name in self.functions:
            return message_index(self.functions[name])
        return message_index(self.init_of(name))

    def _handled(self) -> set[str]:
        """Exceptions an error handler turns into a response, and the body-building helpers."""
        handled = {"error_response"}
        for tree in self.trees.values():
            aliases = {
                alias.asname: alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom)
                for alias in node.names
                if alias.asname
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and call_name(node) == "exception_handler":
                    for arg in node.args:
                        if isinstance(arg, ast.Name) and arg.id != "Exception":
                            handled.add(aliases.get(arg.id, arg.id))
        return handled

    def _sinks(self) -> set[str]:
        sinks = self._handled()
        assert {"HTTPException", "FieldError", "error_response", "OpenAIError"} <= sinks, sinks
        while True:
            grown = sinks | self._subclasses(sinks) | self._forwarded(sinks)
            if grown == sinks:
                return sinks
            sinks = grown

    def _subclasses(self, sinks: set[str]) -> set[str]:
        return {
            name
            for name, cls in self.classes.items()
            if any(isinstance(b, ast.Name) and b.id in sinks for b in cls.bases)
        }

    def _forwarded(self, sinks: set[str]) -> set[str]:
        """Project exceptions whose instance reaches a sink call: `except X as e: raise
        Sink(..., str(e))` or `if isinstance(e, X): return Sink(..., first_line(e))`."""
        found = set()
        for tree in self.trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None:
                    if self._reaches_sink(node.body, node.name, sinks):
                        found |= self._names(node.type)
                elif isinstance(node, ast.If) and _isinstance_test(node.test):
                    variable, types = _isinstance_test(node.test)
                    if self._reaches_sink(node.body, variable, sinks):
                        found |= self._names(types)
        return found & set(self.classes)

    def _names(self, node: ast.expr) -> set[str]:
        elements = node.elts if isinstance(node, ast.Tuple) else [node]
        return {e.id if isinstance(e, ast.Name) else e.attr for e in elements}

    def _reaches_sink(self, body: list[ast.stmt], variable: str, sinks: set[str]) -> bool:
        for statement in body:
            for node in ast.walk(statement):
                if isinstance(node, ast.Call) and call_name(node) in sinks:
                    args = node.args + [k.value for k in node.keywords]
                    if any(
                        isinstance(n, ast.Name) and n.id == variable
                        for arg in args
                        for n in ast.walk(arg)
                    ):
                        return True
        return False

    def messages(self) -> list[Message]:
        found = []
        for path, tree in self.trees.items():
            constants = module_strings(tree)
            relative = path.relative_to(ROOT)
            for owner, node in _walk_with_owner(tree):
                where = f"{relative}:{getattr(node, 'lineno', '?')}"
                for kind, expr in self._message_nodes(path, owner, node):
                    found += [Message(k, where, kind) for k in message_keys(expr, constants)]
        return found

    def _message_nodes(self, path: Path, owner: list[ast.AST], node: ast.AST):
        if isinstance(node, ast.Call):
            name = call_name(node)
            if name in MODEL_REASONS:
                yield "model", argument(node, self.index_of(name))
            elif name in STARTUP_REFUSALS:
                yield "startup", argument(node, self.index_of(name))
            elif name in self.sinks:
                yield "http", argument(node, self.index_of(name))
            elif name in FAILING_CALLS and len(node.args) >= 2:
                yield "job", node.args[1]
            elif name == "__init__" and _is_super_call(node):
                cls = next((o for o in reversed(owner) if isinstance(o, ast.ClassDef)), None)
                bases = {b.id for b in cls.bases if isinstance(b, ast.Name)} if cls else set()
                for base in bases & (self.sinks | MODEL_REASONS | STARTUP_REFUSALS):
                    yield "http", argument(node, self.index_of(base))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            for target, value in _pairs(node):
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
                if name in REASON_TARGETS:
                    yield "reason", value
        elif (
            isinstance(node, ast.Raise)
            and path.name == "config.py"
            and isinstance(node.exc, ast.Call)
            and any(_is_validator(o) for o in owner)
        ):
            yield "settings", argument(node.exc, 0)


def _walk_with_owner(tree: ast.AST, owner: list[ast.AST] | None = None):
    owner = owner or []
    for child in ast.iter_child_nodes(tree):
        yield owner, child
        yield from _walk_with_owner(child, [*owner, child])


def _pairs(node: ast.Assign | ast.AnnAssign):
    if isinstance(node, ast.AnnAssign):
        yield node.target, node.value
        return
    for target in node.targets:
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            yield from zip(target.elts, node.value.elts, strict=False)
        else:
            yield target, node.value


def _is_super_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "super"
    )


def _is_validator(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef):
        return False
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")
        if name.endswith("_validator"):
            return True
    return False


def _isinstance_test(test: ast.expr) -> tuple[str, ast.expr] | None:
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Name)
        and test.func.id == "isinstance"
        and len(test.args) == 2
        and isinstance(test.args[0], ast.Name)
    ):
        return test.args[0].id, test.args[1]
    return None


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text()


@pytest.fixture(scope="module")
def code() -> Code:
    return Code()


def anchors(guide: str) -> set[str]:
    return set(re.findall(r'<a id="([^"]+)"></a>', guide))


def missing_anchors(guide: str, wanted: dict[str, str]) -> list[str]:
    present = anchors(guide)
    return [
        f"{anchor} ({what})" for anchor, what in sorted(wanted.items()) if anchor not in present
    ]


def api_types() -> set[str]:
    default = json.loads(api_errors.error_response(599, "x").body)["error"]["type"]
    return {*api_errors.ERROR_TYPES.values(), default}


def test_every_api_error_type_has_an_entry(guide):
    wanted = {f"api-{t}": f"/api error type {t!r}" for t in api_types()}
    assert not missing_anchors(guide, wanted), missing_anchors(guide, wanted)


def test_error_types_written_by_hand_are_api_types(code):
    """A `{"type": ..., "message": ...}` dict outside errors.py (the SSE `error` event) uses a
    type of the one vocabulary, so the guide's entry for it applies."""
    written = {}
    for path, tree in code.trees.items():
        if "openai" in path.parts:  # /v1's own shape and vocabulary
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
                if "type" in keys and "message" in keys:
                    value = node.values[keys.index("type")]
                    if isinstance(value, ast.Constant):
                        written[value.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    assert written, "the SSE error event's body is no longer found"
    strangers = {t: where for t, where in written.items() if t not in api_types()}
    assert not strangers, strangers


def test_every_openai_error_type_and_code_has_an_entry(guide, code):
    types = {
        *openai_errors.ERROR_TYPES.values(),
        openai_errors.OpenAIError(418, "x").body().error.type,
    }
    codes = set(openai_errors.HTTP_ERROR_CODES.values())
    for tree in code.trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and call_name(node) == "OpenAIError":
                value = argument(node, 3, ("code",))
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    codes.add(value.value)
    assert {"model_not_found", "invalid_json"} <= codes, codes  # the walk still finds them
    wanted = {f"v1-{t}": f"/v1 error type {t!r}" for t in types}
    wanted |= {f"v1-code-{c}": f"/v1 error code {c!r}" for c in codes}
    assert not missing_anchors(guide, wanted), missing_anchors(guide, wanted)


def test_every_fallback_reason_kind_has_an_entry(guide, code):
    wanted = {f"fallback-{k}": f"fallback_reason {k!r}" for k in serve_metrics.FALLBACK_REASONS}
    assert not missing_anchors(guide, wanted), missing_anchors(guide, wanted)


def test_fallback_reasons_the_pipeline_writes_start_with_a_known_kind(code):
    """Reasons are `<kind>: <detail>`; a new kind must join FALLBACK_REASONS (and the guide)."""
    tree = code.trees[ROOT / "serve_app" / "pipeline.py"]
    written = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and re.match(r"^[a-z_]+: ", str(first.value)):
                written.append(first.value.split(":", 1)[0])
    assert written, "no `<kind>: ...` reason found in the pipeline"
    unknown = sorted(set(written) - set(serve_metrics.FALLBACK_REASONS))
    assert not unknown, f"fallback reason kinds not in FALLBACK_REASONS: {unknown}"


def test_every_webhook_state_has_an_entry(guide):
    states = typing.get_args(WebhookDelivery.model_fields["state"].annotation)
    assert "failed" in states
    wanted = {f"webhook-{s}": f"webhook state {s!r}" for s in states}
    assert not missing_anchors(guide, wanted), missing_anchors(guide, wanted)


def test_every_precision_and_downgrade_is_documented(guide):
    values = typing.get_args(Precision)
    wanted = {f"precision-{p}": f"precision {p!r}" for p in values}
    assert not missing_anchors(guide, wanted), missing_anchors(guide, wanted)
    text = normalize(guide)
    steps = {(p, quantization.next_lower_precision(p)) for p in values}
    # fp32's step is bf16 or fp16 by the GPU (half_precision): the one of this machine.
    missing = [f"{a} → {b}" for a, b in sorted(steps) if b and f"{a} → {b}" not in text]
    assert not missing, f"downgrades not in the guide: {missing}"


def test_every_message_the_code_emits_is_quoted(guide, code):
    text = normalize(guide)
    messages = code.messages()
    kinds = {m.kind for m in messages}
    # The walk still finds each kind of message (a refactor that hides them fails here).
    assert {"http", "startup", "model", "job", "reason", "settings"} <= kinds, kinds
    missing = sorted({(m.key, m.where, m.kind) for m in messages if m.key not in text})
    assert not missing, "not in docs/TROUBLESHOOTING.md:\n" + "\n".join(
        f"  {kind:8} {where}: {key!r}" for key, where, kind in missing
    )


def test_the_symptom_index_points_at_entries_that_exist(guide):
    links = set(re.findall(r"\]\(#([^)]+)\)", guide))
    assert links, "the guide has no table of contents"
    dangling = sorted(links - anchors(guide))
    assert not dangling, f"links to no anchor: {dangling}"
