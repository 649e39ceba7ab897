"""A storyboard from the command line, from a running service or with no server at all.

    python -m serve_app.cli "制作一段关于森林探险的短视频" --scenes 5 --format md
    python -m serve_app.cli "a 30-second city promo" --format srt --url http://host:8000
    python -m serve_app.cli "制作一段关于森林探险的短视频" --local --format json

Against a service (`--url` or VSS_URL, default http://127.0.0.1:8000; `--api-key` or
VSS_API_KEY) it creates a task, shows its progress on stderr while it waits and prints the
result on stdout: `json` is the script, every other format is the service's export
(GET /api/tasks/{id}/export). `--local` writes the script in this process with the rule-based
fallback (no model, no server) and the same exporters. Exit codes: 0 done, 1 the service or the
task failed, 2 the request was refused (the field is named) or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO, get_args

import httpx

from deployments.storyboard.constants import ASPECT_RATIOS, RequestLanguage
from deployments.storyboard.exports import ExportFormat, FrameRate

DEFAULT_URL = "http://127.0.0.1:8000"
JSON_FORMAT = "json"
FORMATS = (JSON_FORMAT, *(kind.value for kind in ExportFormat))
FINISHED = ("completed", "failed")
POLL_INTERVAL_S = 0.5
# 503 means "retry later" (overload, a store restarting, a full Serve queue); the task is created
# under an Idempotency-Key, so sending it again never stores two.
MAX_CREATE_ATTEMPTS = 5
MAX_RETRY_AFTER_S = 10.0


class CliError(Exception):
    """A failure to report on stderr, with the process's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m serve_app.cli",
        description="Write a video storyboard script from a short request.",
        epilog="Environment: VSS_URL (service address), VSS_API_KEY (bearer key).",
    )
    parser.add_argument("prompt", help="what the video is about")
    parser.add_argument("--scenes", type=int, dest="num_scenes", help="scene count")
    parser.add_argument("--duration", type=int, dest="duration_s", help="total seconds")
    parser.add_argument("--language", choices=get_args(RequestLanguage), default="auto")
    parser.add_argument("--style", help="e.g. cinematic, documentary, vlog")
    parser.add_argument("--visual-style", help="the look of every shot")
    parser.add_argument("--aspect-ratio", choices=ASPECT_RATIOS)
    parser.add_argument(
        "--character",
        action="append",
        default=[],
        metavar="NAME=DESCRIPTION",
        help="a person in the video (repeatable; the first is the protagonist)",
    )
    parser.add_argument("--format", choices=FORMATS, default="md", help="output (default: md)")
    parser.add_argument(
        "--fps", type=int, choices=[int(rate) for rate in FrameRate], help="otio, fcpxml, edl"
    )
    parser.add_argument("-o", "--output", help="write the result to this file, not stdout")
    parser.add_argument("--local", action="store_true", help="no server: the fallback, here")
    parser.add_argument("--url", default=os.environ.get("VSS_URL", DEFAULT_URL))
    parser.add_argument("--api-key", default=os.environ.get("VSS_API_KEY"))
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the script"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser.parse_args(argv)


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /api/tasks/ body: only what was given, so the service's defaults apply."""
    body: dict[str, Any] = {"prompt": args.prompt, "language": args.language}
    for field in ("num_scenes", "duration_s", "style", "visual_style", "aspect_ratio"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    characters = []
    for given in args.character:
        name, separator, description = given.partition("=")
        if not separator:
            raise CliError(f"--character {given!r}: write it as NAME=DESCRIPTION", 2)
        characters.append({"name": name.strip(), "description": description.strip()})
    if characters:
        body["characters"] = characters
    return body


# --- without a server -----------------------------------------------------------------------


def run_local(body: dict[str, Any], output_format: str, fps: int | None, say: Callable) -> str:
    """The fallback's script for `body`, validated and completed as the service does it."""
    from pydantic import ValidationError

    from deployments.storyboard.exports import DEFAULT_FPS, export_script
    from deployments.storyboard.fallback import build_fallback_script
    from deployments.storyboard.hints import apply_hints
    from deployments.storyboard.models import ScriptRequest

    try:
        request = ScriptRequest.model_validate(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'request'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise CliError(f"invalid request: {problems}", 2) from None
    request, notes = apply_hints(request)
    for note in notes:
        say(f"note: {note}")
    script = build_fallback_script(request)
    say(f"fallback script: {len(script.scenes)} scenes, {script.total_duration:g} s")
    if output_format == JSON_FORMAT:
        return json.dumps(script.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
    content, _kind = export_script(script, ExportFormat(output_format), fps or DEFAULT_FPS)
    return content.decode("utf-8")


# --- against a service ----------------------------------------------------------------------


def error_message(response: httpx.Response) -> str:
    """The service's error shape as one readable message (fields named), else the raw body."""
    try:
        error = response.json()["error"]
        message = error["message"]
        fields = [f"{f['field']}: {f['problem']}" for f in error.get("fields") or []]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text.strip()[:500]}"
    if fields and not all(field in message for field in fields):
        message += " (" + "; ".join(fields) + ")"
    return f"HTTP {response.status_code}: {message}"


def check(response: httpx.Response, api_key: str | None) -> httpx.Response:
    if response.is_success:
        return response
    message = error_message(response)
    if response.status_code == 401:
        hint = "a wrong key" if api_key else "no key: pass --api-key or set VSS_API_KEY"
        raise CliError(f"{message} ({hint})", 2)
    raise CliError(message, 2 if response.status_code in (400, 413, 422) else 1)


def retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", 1)), MAX_RETRY_AFTER_S)
    except ValueError:
        return 1.0


class Progress:
    """One line on stderr that follows the task: rewritten in place on a terminal, a new line
    per change otherwise (logs, pipes)."""

    def __init__(self, stream: TextIO, quiet: bool):
        self.stream = stream
        self.quiet = quiet
        self.in_place = stream.isatty()
        self.last = ""

    def show(self, text: str) -> None:
        if self.quiet or text == self.last:
            return
        self.last = text
        if self.in_place:
            self.stream.write(f"\r\033[K{text}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self, text: str, always: bool = False) -> None:
        """End the progress line with `text` (shown even when quiet if `always`)."""
        if self.in_place and self.last and not self.quiet:
            self.stream.write("\r\033[K")
        self.last = ""
        if always or not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()


def run_remote(args: argparse.Namespace, body: dict[str, Any], progress: Progress) -> str:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    if args.api_key:
        headers["Authorization"] = f"Bearer {args.api_key}"
    base = args.url.rstrip("/")
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
            task = create_task(client, body, args.api_key, progress)
            task = wait_for(client, task, args, progress)
            return fetch_result(client, task, args)
    except httpx.ConnectError as error:
        raise CliError(
            f"cannot reach the service at {base} ({error}); is it running (make serve)? "
            "--url / VSS_URL set the address, --local writes the script without a server"
        ) from None
    except httpx.TimeoutException:
        raise CliError(f"the service at {base} did not answer in time") from None
    except httpx.HTTPError as error:
        raise CliError(f"talking to {base}: {type(error).__name__}: {error}") from None


def create_task(
    client: httpx.Client, body: dict[str, Any], api_key: str | None, progress: Progress
) -> dict[str, Any]:
    for attempt in range(1, MAX_CREATE_ATTEMPTS + 1):
        response = client.post("/api/tasks/", json=body)
        if response.status_code != 503 or attempt == MAX_CREATE_ATTEMPTS:
            return check(response, api_key).json()
        wait_s = retry_after(response)
        progress.show(f"service busy ({error_message(response)}); retrying in {wait_s:g} s")
        time.sleep(wait_s)
    raise AssertionError("unreachable")


def wait_for(
    client: httpx.Client, task: dict[str, Any], args: argparse.Namespace, progress: Progress
) -> dict[str, Any]:
    task_id = task["task_id"]
    deadline = time.monotonic() + args.timeout
    started = time.monotonic()
    while task["status"] not in FINISHED:
        if time.monotonic() > deadline:
            raise CliError(
                f"task {task_id} not finished after {args.timeout:g} s (still {task['status']}); "
                f"it goes on: GET {args.url.rstrip('/')}/api/tasks/{task_id}"
            )
        progress.show(
            f"task {task_id}: {task['status']} {task.get('progress') or 0}% "
            f"({time.monotonic() - started:.0f} s)"
        )
        time.sleep(POLL_INTERVAL_S)
        response = client.get(f"/api/tasks/{task_id}")
        if response.status_code == 503:  # the store restarting: ask again
            continue
        task = check(response, args.api_key).json()
    if task["status"] == "failed":
        progress.done(f"task {task_id}: failed")
        raise CliError(f"task {task_id} failed: {task.get('error') or 'no reason given'}")
    source = task.get("source")
    reason = f", {task['fallback_reason']}" if task.get("fallback_reason") else ""
    progress.done(f"task {task_id}: completed (source: {source}{reason})")
    for note in task.get("notes") or []:
        progress.done(f"note: {note}")
    return task


def fetch_result(client: httpx.Client, task: dict[str, Any], args: argparse.Namespace) -> str:
    if args.format == JSON_FORMAT:
        return json.dumps(task["result"], ensure_ascii=False, indent=2) + "\n"
    params: dict[str, Any] = {"format": args.format}
    if args.fps is not None:
        params["fps"] = args.fps
    response = client.get(f"/api/tasks/{task['task_id']}/export", params=params)
    return check(response, args.api_key).content.decode("utf-8")


# --- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    progress = Progress(sys.stderr, args.quiet)
    try:
        body = request_body(args)
        if args.local:
            result = run_local(body, args.format, args.fps, progress.done)
        else:
            result = run_remote(args, body, progress)
    except CliError as error:
        progress.done(f"error: {error}", always=True)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(result)
    else:
        sys.stdout.write(result)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
