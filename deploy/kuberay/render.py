"""Copy serve_config.yaml into the RayService's serveConfigV2 (deploy/kuberay/rayservice.yaml).

    python deploy/kuberay/render.py          # rewrite the block after the marker line
    python deploy/kuberay/render.py --check  # exit 1 when the manifest is stale

KubeRay deploys the Serve config embedded in the RayService, so the manifest carries a copy of
serve_config.yaml; tests/test_deploy_manifests.py fails when the two differ. Text, not YAML
round-tripping, so the manifest's comments and layout stay as written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
SERVE_CONFIG = ROOT / "serve_config.yaml"
MARKER = (
    "  # serveConfigV2: serve_config.yaml, copied by deploy/kuberay/render.py (do not edit below)"
)
INDENT = " " * 4


def rendered(manifest: str, serve_config: str) -> str:
    head, found, _ = manifest.partition(MARKER + "\n")
    if not found:
        raise SystemExit(f"{MANIFEST}: marker line not found: {MARKER.strip()}")
    body = "".join(
        INDENT + line if line.strip() else "\n" for line in serve_config.splitlines(keepends=True)
    )
    return f"{head}{MARKER}\n  serveConfigV2: |\n{body}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = parser.parse_args(argv)
    current = MANIFEST.read_text()
    new = rendered(current, SERVE_CONFIG.read_text())
    if args.check:
        if new != current:
            print(f"{MANIFEST} is stale: run python deploy/kuberay/render.py", file=sys.stderr)
            return 1
        return 0
    MANIFEST.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
