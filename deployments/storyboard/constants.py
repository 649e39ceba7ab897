"""Every limit and vocabulary of a storyboard, defined once: the request, the model's JSON
schema, the parser and the fallback all import them from here.

Change a number here and every path follows (tests assert against these names, not copies).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

# Scenes of one storyboard.
MIN_SCENES, MAX_SCENES = 1, 20
# Scene count when a request leaves it open: about one scene per SECONDS_PER_SCENE of the total,
# within an arc of opening, development, climax and ending.
DEFAULT_SCENE_RANGE = (3, 8)
SECONDS_PER_SCENE = 6

# Length of one scene, in seconds. 60 s, not 30: requests may ask for up to MAX_DURATION_S in a
# few scenes (300 s in the default arc's 8 scenes is 37.5 s each), and the API's Scene has
# always allowed 60. The parser clamps a model's durations into this range; the fallback never
# writes a longer scene; constrained decoding holds the model to it.
MIN_SCENE_SECONDS, MAX_SCENE_SECONDS = 1, 60
# A scene whose duration the model left out, when the request gives no total to share.
DEFAULT_SCENE_SECONDS = 5

# Total length a request may ask for, and what it gets when it does not ask.
MIN_DURATION_S, MAX_DURATION_S = 5, 300
DEFAULT_DURATION_S = 30

# Text of a request and of a script.
MAX_PROMPT_CHARS = 2000
MAX_SYSTEM_PROMPT_CHARS = 2000
MAX_STYLE_CHARS = 50
MAX_TITLE_CHARS = 200

# Which served model writes a script: an id of the settings' model registry (also /v1's `model`).
MODEL_ID_PATTERN = r"^[A-Za-z0-9._:/-]+$"
MAX_MODEL_ID_CHARS = 256

# Characters and look, given once per request and kept across scenes (every scene's visual
# prompt carries the visual style and each present character's description).
MAX_CHARACTERS = 8
MAX_CHARACTER_NAME_CHARS = 40
MAX_CHARACTER_DESCRIPTION_CHARS = 300
MAX_VISUAL_STYLE_CHARS = 200
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "21:9"]
ASPECT_RATIOS: tuple[AspectRatio, ...] = get_args(AspectRatio)
DEFAULT_ASPECT_RATIO: AspectRatio = "16:9"

# Languages a script is written in: THE list (prompts, parser aliases, fallback content, narration
# budgets and subtitle limits all exist for each, and data files are checked against it). A
# request may also ask for `auto` (detect the prompt's among them).
ScriptLanguage = Literal["zh", "en", "ja", "ko", "es", "fr", "de"]
RequestLanguage = Literal[ScriptLanguage, "auto"]
SCRIPT_LANGUAGES: tuple[ScriptLanguage, ...] = get_args(ScriptLanguage)
# How a language is written: what detection looks for, how the fallback's content is checked,
# how narration is counted (characters in the CJK scripts, words in Latin ones).
Script = Literal["hanzi", "kana", "hangul", "latin"]
LANGUAGE_SCRIPTS: dict[ScriptLanguage, Script] = {
    "zh": "hanzi", "en": "latin", "ja": "kana", "ko": "hangul",
    "es": "latin", "fr": "latin", "de": "latin",
}  # fmt: skip

# Narration that can be spoken in its scene's time, per language: characters a second for
# zh/ja/ko (hanzi, kana and kanji, hangul syllables), words a second for en/es/fr/de. A calm
# voice-over, a little under broadcast news pace (sources in docs/SCRIPTS.md, "Narration
# budgets"). A scene of d seconds gets floor(d x rate); the fallback writes within it, the model
# is asked for it (prompt and schema), and the quality report flags a line over it.
NARRATION_RATES: dict[ScriptLanguage, float] = {
    "zh": 5, "ja": 5, "ko": 5, "en": 3, "es": 3, "fr": 3, "de": 2.5,
}  # fmt: skip
ZH_NARRATION_CHARS_PER_SECOND = NARRATION_RATES["zh"]
EN_NARRATION_WORDS_PER_SECOND = NARRATION_RATES["en"]
# Characters per word (space included) in the word-counted languages, to turn a word budget into
# a length bound for the JSON schema: German compounds run longer.
CHARS_PER_WORD: dict[ScriptLanguage, int] = {"en": 7, "es": 7, "fr": 7, "de": 9}
EN_CHARS_PER_WORD = CHARS_PER_WORD["en"]
# Subtitle line limits in characters (Netflix's timed-text style guides per language: 16 for
# Simplified Chinese and Korean, 13 for Japanese, 42 for Latin-script languages).
SUBTITLE_LINE_CHARS: dict[ScriptLanguage, int] = {
    "zh": 16, "ja": 13, "ko": 16, "en": 42, "es": 42, "fr": 42, "de": 42,
}  # fmt: skip

# Which path wrote a script: the model's first reply, its second after a repair turn, or the
# fallback's templates.
ScriptSource = Literal["llm", "llm_repaired", "fallback"]
SCRIPT_SOURCES: tuple[ScriptSource, ...] = get_args(ScriptSource)
LLM_SOURCES: tuple[ScriptSource, ...] = ("llm", "llm_repaired")  # in the order they are tried


# Kinds of prompt keyword a fallback template slot takes (`{place|the city}`): what the word
# names. `subject` is the one the video is about, of the kind its genre declares.
TermKind = Literal[
    "place", "food", "product", "creature", "person", "activity", "season", "object", "theme"
]
TERM_KINDS: tuple[TermKind, ...] = get_args(TermKind)


class Camera(StrEnum):
    """The shot vocabulary downstream video tools understand."""

    WIDE_SHOT = "wide shot"
    MEDIUM_SHOT = "medium shot"
    CLOSE_UP = "close up"
    EXTREME_CLOSE_UP = "extreme close up"
    AERIAL_VIEW = "aerial view"
    TRACKING_SHOT = "tracking shot"
    PANNING_SHOT = "panning shot"
    LOW_ANGLE = "low angle"
    HIGH_ANGLE = "high angle"
    POINT_OF_VIEW = "point of view"
    TIME_LAPSE = "time lapse"
