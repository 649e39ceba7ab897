"""Fetching a checkpoint from the Hugging Face Hub (or ModelScope) and verifying it.

Used by `scripts/download_model.py` and by the ChatGLM deployment when `auto_download` is on.
A dropped connection resumes from the byte it reached (HTTP Range); a rerun skips complete
files; network errors are retried with exponential backoff. Afterwards every shard the weight
index names must be present at the hub's size, and LFS files are checked against their sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TypeVar

DEFAULT_REPOS = {"huggingface": "THUDM/chatglm3-6b", "modelscope": "ZhipuAI/chatglm3-6b"}
HUGGINGFACE_ENDPOINT = "https://huggingface.co"
T = TypeVar("T")
OUTSIDE = "refused: the name points outside the model folder"


class Offline(RuntimeError):
    """The hub could not be reached at all."""


@dataclass(frozen=True)
class ExpectedFile:
    name: str
    size: int | None
    sha256: str | None


def network_errors() -> tuple[type[BaseException], ...]:
    import httpx2  # huggingface_hub 2.x's HTTP client
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    # LocalEntryNotFoundError: snapshot_download could not reach the hub for the file list.
    return (
        httpx2.TransportError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        ConnectionError,
        TimeoutError,
    )


def with_retries(action: Callable[[], T], retries: int, backoff_s: float, what: str) -> T:
    """Run `action`, retrying network errors with exponential backoff; Offline when all fail."""
    from huggingface_hub.errors import (
        GatedRepoError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    not_retryable = (
        RepositoryNotFoundError,
        RevisionNotFoundError,
        RemoteEntryNotFoundError,
        GatedRepoError,
    )

    for attempt in range(retries + 1):
        try:
            return action()
        except not_retryable:
            raise  # retrying cannot fix a wrong name
        except network_errors() as error:
            if attempt == retries:
                raise Offline(f"{what} failed after {retries + 1} attempts: {error}") from error
            delay = backoff_s * 2**attempt
            print(f"{what}: {type(error).__name__}: {error}; retrying in {delay:.1f} s", flush=True)
            time.sleep(delay)
    raise AssertionError("unreachable")


def huggingface_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", HUGGINGFACE_ENDPOINT).rstrip("/")


def download_from_huggingface(
    repo_id: str, revision: str, local_dir: Path, retries: int, backoff_s: float
) -> list[ExpectedFile]:
    """Snapshot the repo at `revision` into `local_dir`; return what the hub says it holds."""
    from huggingface_hub import HfApi, snapshot_download

    endpoint = huggingface_endpoint()
    api = HfApi(endpoint=endpoint)
    info = with_retries(
        lambda: api.model_info(repo_id, revision=revision, files_metadata=True),
        retries,
        backoff_s,
        f"reading {repo_id}@{revision} from {endpoint}",
    )
    siblings = info.siblings
    # Repos like chatglm3-6b carry the weights twice (.bin and .safetensors): fetch one copy.
    ignore = ["*.bin", "*.bin.index.json"]
    if any(s.rfilename.endswith(".safetensors") for s in siblings):
        siblings = [s for s in siblings if not any(fnmatch(s.rfilename, p) for p in ignore)]
    else:
        ignore = []
    print(f"{repo_id}@{revision} is commit {info.sha}: {len(siblings)} files", flush=True)
    with_retries(
        lambda: snapshot_download(
            repo_id,
            revision=info.sha,
            local_dir=local_dir,
            endpoint=endpoint,
            ignore_patterns=ignore,
            max_workers=4,
        ),
        retries,
        backoff_s,
        f"downloading {repo_id}",
    )
    return [ExpectedFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None) for s in siblings]


def download_from_modelscope(repo_id: str, revision: str, local_dir: Path) -> list[ExpectedFile]:
    try:
        from modelscope import snapshot_download
    except ImportError as error:
        raise SystemExit("ModelScope source needs `pip install modelscope`") from error
    snapshot_download(repo_id, revision=revision, local_dir=str(local_dir))
    return []  # ModelScope gives no per-file metadata here: the index check still runs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def path_inside(local_dir: Path, name: str) -> Path | None:
    """`local_dir / name` when it stays inside `local_dir`, symlinks followed; None for a name
    a hostile hub could use to reach other files (absolute, `..`, a drive, a backslash, a NUL,
    or a symlink inside the folder that points out of it)."""
    pure = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\0" in name
        or pure.is_absolute()
        or PureWindowsPath(name).drive
        or ".." in pure.parts
    ):
        return None
    path = local_dir / pure
    if not path.resolve().is_relative_to(local_dir.resolve()):
        return None
    return path


def damaged_files(local_dir: Path, expected: list[ExpectedFile], check_hashes: bool) -> dict:
    """Files missing or differing from the hub's size or sha256, with the reason; names that
    would reach outside `local_dir` are reported as such and never looked at."""
    damaged: dict[str, str] = {}
    for file in expected:
        path = path_inside(local_dir, file.name)
        if path is None:
            damaged[file.name] = OUTSIDE
        elif not path.is_file():
            damaged[file.name] = "missing"
        elif file.size is not None and path.stat().st_size != file.size:
            damaged[file.name] = f"{path.stat().st_size} bytes, hub says {file.size}"
        elif check_hashes and file.sha256 and sha256_of(path) != file.sha256:
            damaged[file.name] = "sha256 differs from the hub's"
    return damaged


def incomplete_checkpoint(local_dir: Path) -> list[str]:
    """What a servable checkpoint lacks: config, tokenizer, weights, shards the index names."""
    problems: list[str] = []
    if not (local_dir / "config.json").is_file():
        problems.append("config.json: missing")
    if not any((local_dir / name).is_file() for name in ("tokenizer.model", "tokenizer.json")):
        problems.append("no tokenizer (tokenizer.model or tokenizer.json)")
    indexes = list(local_dir.glob("*.index.json"))
    if not indexes and not any(any(local_dir.glob(p)) for p in ("*.safetensors", "*.bin")):
        problems.append("no weight files")
    for index in indexes:
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            path = path_inside(local_dir, shard)
            if path is None:
                problems.append(f"{shard!r}: named in {index.name} but {OUTSIDE}")
            elif not path.is_file():
                problems.append(f"{shard}: named in {index.name} but missing")
    return problems


def verify(local_dir: Path, expected: list[ExpectedFile], check_hashes: bool = True) -> list[str]:
    """Problems with the downloaded directory; damaged files are deleted so a rerun fetches them
    (only inside `local_dir`: each name is checked before any file operation)."""
    damaged = damaged_files(local_dir, expected, check_hashes)
    for name, reason in damaged.items():
        if reason not in ("missing", OUTSIDE) and (path := path_inside(local_dir, name)):
            path.unlink()
    problems = [
        f"{name!r}: {reason}" if reason == OUTSIDE else f"{name}: {reason}"
        for name, reason in damaged.items()
    ]
    return problems + incomplete_checkpoint(local_dir)


def download_checkpoint(
    local_dir: Path,
    repo_id: str | None = None,
    revision: str = "main",
    source: str = "huggingface",
    retries: int = 5,
    backoff_s: float = 2.0,
    check_hashes: bool = True,
) -> list[str]:
    """Download `repo_id@revision` into `local_dir`; the problems verification found (none =
    complete). Raises Offline when the hub cannot be reached."""
    repo_id = repo_id or DEFAULT_REPOS[source]
    local_dir.mkdir(parents=True, exist_ok=True)
    if source == "huggingface":
        expected = download_from_huggingface(repo_id, revision, local_dir, retries, backoff_s)
    else:
        expected = download_from_modelscope(repo_id, revision, local_dir)
    return verify(local_dir, expected, check_hashes)
