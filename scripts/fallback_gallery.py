"""Regenerate the fallback gallery in docs/SCRIPTS.md: what users without a model get.

    python scripts/fallback_gallery.py            # rewrite the section between the markers
    python scripts/fallback_gallery.py --check    # exit 1 when the docs are out of date

Each prompt goes through the same path a task takes when the model is absent: the prompt's
length and count hints are read (deployments/storyboard/hints.py), then the fallback writes the
storyboard. The section shows the template chosen and every scene's lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deployments.storyboard.fallback import build_fallback_script, fallback_template
from deployments.storyboard.hints import apply_hints
from deployments.storyboard.models import ScriptRequest

DOC = Path(__file__).resolve().parents[1] / "docs" / "SCRIPTS.md"
BEGIN = "<!-- gallery:begin (scripts/fallback_gallery.py writes this section) -->"
END = "<!-- gallery:end -->"
PROMPTS = (
    "制作一段关于森林探险的短视频",
    "A 45-second travel teaser for Kyoto in autumn: temples, maple leaves, tea ceremony",
    "拍一个成都街头美食的探店vlog，要有火锅和夜市",
    "用5个镜头讲述咖啡的制作过程",
    "做一个一分钟的城市宣传片",
    "为一款新的降噪耳机做30秒的产品广告",
    "A 20-second teaser for a running shoe",
    "A documentary about honeybees and how they make honey",
    "程序员的一天vlog",
    "篮球训练营的热血时刻",
    "用动画讲解光合作用的原理",
    "A short film about a lost umbrella",
)


def gallery() -> str:
    parts = [BEGIN, ""]
    for prompt in PROMPTS:
        request, notes = apply_hints(ScriptRequest(prompt=prompt))
        script = build_fallback_script(request)
        parts += [
            f"#### {prompt}",
            "",
            f"template `{fallback_template(request)}`, {len(script.scenes)} scenes, "
            f"{script.total_duration:g} s" + (f"; {'; '.join(notes)}" if notes else "") + ".",
            f"**{script.title}**",
            "",
            "| # | s | camera | description | narration | visual prompt |",
            "|---|---|---|---|---|---|",
        ]
        parts += [
            f"| {s.scene_number} | {s.duration:g} | {s.camera.value} | {s.description} "
            f"| {s.narration} | {s.visual_prompt} |"
            for s in script.scenes
        ]
        parts.append("")
    return "\n".join([*parts, END])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Only check the docs are current.")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{DOC}: no gallery markers ({BEGIN} ... {END})", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    updated = head + gallery() + tail
    if args.check:
        if updated != text:
            print("docs/SCRIPTS.md gallery is out of date: run scripts/fallback_gallery.py")
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    print(f"wrote {len(PROMPTS)} storyboards to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
