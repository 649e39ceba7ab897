"""Download ChatGLM3-6B (or any model repo) into a local directory, then verify it.

A connection that drops mid-file resumes from the byte it reached (HTTP Range); a rerun skips
files already complete. Network errors are retried with exponential backoff. Afterwards every
shard the weight index names must be present with the size the hub reports, and files the hub
gives a sha256 for (the LFS weights) are hashed and compared.

    python scripts/download_model.py                       # THUDM/chatglm3-6b → models/chatglm3-6b
    python scripts/download_model.py --revision <commit> --local-dir /data/chatglm3-6b
    HF_ENDPOINT=https://hf-mirror.com python scripts/download_model.py
    python scripts/download_model.py --source modelscope   # needs `pip install modelscope`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deployments.engine.download import DEFAULT_REPOS, Offline, download_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=sorted(DEFAULT_REPOS), default="huggingface")
    parser.add_argument("--repo-id", help="default: THUDM/chatglm3-6b (HF), ZhipuAI/chatglm3-6b")
    parser.add_argument("--revision", default="main", help="branch, tag or commit to pin")
    parser.add_argument("--local-dir", type=Path, default=Path("models/chatglm3-6b"))
    parser.add_argument("--retries", type=int, default=5, help="retries on network errors")
    parser.add_argument("--backoff", type=float, default=2.0, help="first retry delay, seconds")
    parser.add_argument("--skip-hashes", action="store_true", help="check sizes only")
    args = parser.parse_args(argv)
    repo_id = args.repo_id or DEFAULT_REPOS[args.source]
    try:
        problems = download_checkpoint(
            args.local_dir,
            repo_id,
            args.revision,
            args.source,
            args.retries,
            args.backoff,
            check_hashes=not args.skip_hashes,
        )
    except Offline as error:
        print(
            f"✖ cannot reach the model hub ({error}).\n"
            "  No network? Run this where there is one and copy the directory over, or use a\n"
            "  mirror: HF_ENDPOINT=https://hf-mirror.com, or --source modelscope.",
            file=sys.stderr,
        )
        return 2
    if problems:
        print("✖ verification failed; run again to repair:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"✔ {repo_id}@{args.revision} complete and verified in {args.local_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
