"""The prompts every load test and benchmark sends: Chinese and English, short and long."""

from __future__ import annotations

import random

ZH_PROMPTS = (
    "制作一段关于森林探险的短视频",
    "一段城市夜景的延时摄影短片，霓虹灯下行人匆匆",
    "为新款手机制作一段产品宣传片，突出外观和拍照功能",
    "拍一段家常红烧肉的美食制作视频",
    "海边日落的旅行vlog，海浪拍打礁石，海鸥飞过",
)
EN_PROMPTS = (
    "Make a short video about a forest adventure",
    "A product commercial for a new electric bicycle",
    "A cooking video: how to make fresh ramen at home",
    "A documentary clip about honeybees in a spring meadow",
    "A travel vlog of a sunrise hike to a mountain summit",
)
PROMPTS = ZH_PROMPTS + EN_PROMPTS
# What the benchmarks send, in turn: one storyboard shape, five subjects (the shared instructions
# can be prefix-cached, the requests cannot).
BENCH_BODIES = tuple({"prompt": prompt, "duration_s": 30, "num_scenes": 5} for prompt in ZH_PROMPTS)


def script_request(rng: random.Random) -> dict:
    """A valid POST /api/tasks/ body: a random prompt, sometimes with style, length and scenes."""
    language = rng.choice(("zh", "en"))
    body: dict = {"prompt": rng.choice(ZH_PROMPTS if language == "zh" else EN_PROMPTS)}
    if rng.random() < 0.5:
        body["language"] = rng.choice((language, "auto"))
    if rng.random() < 0.3:
        body["style"] = rng.choice(("cinematic", "documentary", "vlog"))
    if rng.random() < 0.3:
        body["duration_s"] = rng.choice((15, 30, 60))
    if rng.random() < 0.3:
        body["num_scenes"] = rng.randint(3, 8)
    return body
