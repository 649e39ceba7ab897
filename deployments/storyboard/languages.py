"""What each script language needs, as data (data/languages/<code>.yaml, one file per language of
constants.SCRIPT_LANGUAGES): the model's prompts, the parser's field aliases and time words, the
fallback's keyword lists, the document export's labels, and the words auto-detection weighs.

Every file is validated when this module is imported (a missing language, a missing template
field or text in the wrong script stops the service at start-up, naming the file and key).

Detection (`detect_language`): the script decides zh/ja/ko (kana → ja, hangul → ko, hanzi only
→ zh, when those letters are at least as many as the Latin words); a Latin-script text is scored
by its function words (each hit weighed 1/k when k languages share the word), the letters only
one of them uses (ñ ¿ ¡ á í ó ú → es, ç œ è ê â î û ù à ë ï → fr, ä ö ü ß → de) and the
glossary's nouns (0.5, shared the same way); English on a tie. Text whose best score is under
MIN_LATIN_EVIDENCE ("O", "Le chat", a name alone) is too thin to tell and gets the default
language (English unless the caller names another). No model, no dependency: a short prompt of
a dozen words carries several function words, and the accuracy on the prompt sets is measured
in tests/test_languages.py.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from deployments.storyboard.constants import (
    LANGUAGE_SCRIPTS,
    SCRIPT_LANGUAGES,
    ScriptLanguage,
)
from deployments.storyboard.content import (
    DATA_DIR,
    ContentError,
    ContentModel,
    LowerWord,
    Text,
    Word,
    load_file,
)
from deployments.storyboard.language import cjk_count, east_asian_count, hangul_count, kana_count

_LATIN_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Letters that one Latin-script language among ours writes and the others do not.
# (á í ó ú: Spanish writes them, French and German never; à: French, never Spanish.)
_TELLTALE_LETTERS: dict[ScriptLanguage, str] = {
    "es": "ñ¿¡áíóú",
    "fr": "çœèêâîûùàëï",
    "de": "äöüß",
}
# Below this much evidence a Latin-script text is too thin to tell ("O", "Le chat", "El gato"):
# detection answers the default language instead of guessing.
MIN_LATIN_EVIDENCE = 1.5
GLOSSARY_WORD_WEIGHT = 0.5  # a noun the glossary lists in only one language: weaker than "el"


def _fields_of(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _template(*allowed: str, required: tuple[str, ...] = ()) -> AfterValidator:
    """A str.format template that uses only `allowed` fields and all of `required`."""

    def check(text: str) -> str:
        try:
            used = _fields_of(text)
        except ValueError as error:
            raise ValueError(f"not a valid template: {error}") from None
        if unknown := sorted(used - set(allowed)):
            raise ValueError(f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
        if missing := sorted(set(required) - used):
            raise ValueError(f"missing field(s) {missing}")
        return text

    return AfterValidator(check)


_USER_FIELDS = (
    "cameras",
    "rate",
    "example",
    "prompt",
    "style",
    "duration",
    "scenes",
    "aspect_ratio",
    "look",
)


class Example(ContentModel):
    """The placeholder texts of the JSON example in the user prompt."""

    title: Text
    description: Text
    action: Text
    narration: Text


class Prompts(ContentModel):
    """What the model is told, in this language (storyboard/prompts.py fills them)."""

    system: Text  # the persona
    # The fixed rules first, the request last (prefix cache): every field of _USER_FIELDS.
    user: Annotated[Text, _template(*_USER_FIELDS, required=_USER_FIELDS)]
    repair: Annotated[Text, _template("problems", required=("problems",))]
    default_style: Text
    scene_range: Annotated[Text, _template("low", "high", required=("low", "high"))]
    visual_style: Annotated[Text, _template("style", required=("style",))]
    characters: Annotated[Text, _template("lines", required=("lines",))]
    example: Example


class Aliases(ContentModel):
    """Field names and words a model may write in this language (the parser accepts them)."""

    names: tuple[LowerWord, ...] = ()  # values of `language` that mean this one
    scenes: tuple[Word, ...] = ()
    title: tuple[Word, ...] = ()
    description: tuple[Word, ...] = ()
    duration: tuple[Word, ...] = ()
    camera: tuple[Word, ...] = ()
    action: tuple[Word, ...] = ()
    narration: tuple[Word, ...] = ()
    visual_prompt: tuple[Word, ...] = ()
    characters: tuple[Word, ...] = ()
    seconds: tuple[Word, ...] = ()  # "5秒", "5초", "5 segundos"
    minutes: tuple[Word, ...] = ()  # "1分", "1분", "1 minuto"


class Keywords(ContentModel):
    """Words the fallback's keyword extraction drops (zh and en: data/keywords.yaml)."""

    # Articles, particles, pronouns, prepositions: also what detection weighs (Latin scripts).
    function_words: tuple[LowerWord, ...] = ()
    meta_words: tuple[LowerWord, ...] = ()  # about the request itself: video, make, short
    # Endings that mark a word's role (Japanese particles, Korean josa): a Japanese word followed
    # by another hiragana ending is a verb or adjective stem; a Korean word loses them.
    particles: tuple[Word, ...] = ()


_SCENE_EDIT_FIELDS = ("script", "task", "instruction", "cameras", "duration")


class Editing(ContentModel):
    """What the model is told when it rewrites or inserts one scene, or rewrites the whole
    script under an instruction (storyboard/editing.py fills them)."""

    scene: Annotated[Text, _template(*_SCENE_EDIT_FIELDS, required=_SCENE_EDIT_FIELDS)]
    rewrite_task: Annotated[Text, _template("number", required=("number",))]
    insert_task: Annotated[Text, _template("number", required=("number",))]
    instruction: Annotated[Text, _template("text", required=("text",))]
    refine: Annotated[
        Text,
        _template(
            "script", "instruction", "cameras", required=("script", "instruction", "cameras")
        ),
    ]


class Hints(ContentModel):
    """How a prompt in this language states the video's length and scene count (hints.py reads
    them besides its own zh/en rules): unit words, number words, what marks a per-scene length
    or the total."""

    seconds: tuple[Word, ...] = ()  # 30秒, 30 segundos
    minutes: tuple[Word, ...] = ()  # 2分, 2 Minuten
    scenes: tuple[Word, ...] = ()  # 5シーン, 5 escenas
    counters: tuple[Word, ...] = ()  # 五つのシーン, 5개 장면: a counter between number and noun
    numbers: dict[Word, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    articles: tuple[Word, ...] = ()  # "una escena": a scene, not a count of one
    # "1 minuto y 30 segundos": the word joining minutes and seconds.
    and_: tuple[Word, ...] = Field(default=(), alias="and")
    per_scene: tuple[Word, ...] = ()  # "5 segundos cada una": a scene's length, not the video's
    total: tuple[Word, ...] = ()  # "en total": this number is the video's
    half_minute: tuple[Word, ...] = ()  # medio minuto


class Labels(ContentModel):
    """Headings of the Markdown export."""

    summary: Annotated[Text, _template("count", "total", required=("count", "total"))]
    scene: Annotated[Text, _template("number", required=("number",))]
    description: Text
    action: Text
    narration: Text
    characters: Text
    visual_prompt: Text
    visual_style: Text
    aspect_ratio: Text


class Language(ContentModel):
    code: ScriptLanguage  # the file's name
    name: Text  # in the language itself: 日本語
    english_name: Annotated[str, Field(pattern=r"^[A-Z][a-z]+$")]  # Japanese
    # Two nouns as one phrase, for a topic carried from a prompt in another language.
    noun_phrase: Annotated[Text, _template("modifier", "head", required=("modifier", "head"))]
    prompts: Prompts
    editing: Editing
    aliases: Aliases = Aliases()
    keywords: Keywords = Keywords()
    hints: Hints = Hints()
    labels: Labels

    @property
    def script(self) -> str:
        return LANGUAGE_SCRIPTS[self.code]


def load_languages(data_dir: Path) -> dict[ScriptLanguage, Language]:
    """data_dir/languages/<code>.yaml for every code of SCRIPT_LANGUAGES, and no other file."""
    folder = data_dir / "languages"
    found = {path.stem: path for path in sorted(folder.glob("*.yaml"))}
    if extra := sorted(set(found) - set(SCRIPT_LANGUAGES)):
        raise ContentError(
            f"{folder}: {', '.join(extra)}: not a script language "
            f"(constants.ScriptLanguage: {', '.join(SCRIPT_LANGUAGES)})"
        )
    if missing := [code for code in SCRIPT_LANGUAGES if code not in found]:
        raise ContentError(f"{folder}: no file for {', '.join(missing)} (<code>.yaml)")
    return {code: load_file(found[code], Language, code=code) for code in SCRIPT_LANGUAGES}


LANGUAGES: dict[ScriptLanguage, Language] = load_languages(DATA_DIR)
LATIN_LANGUAGES: tuple[ScriptLanguage, ...] = tuple(
    code for code in SCRIPT_LANGUAGES if LANGUAGE_SCRIPTS[code] == "latin"
)


def _function_word_weights() -> dict[str, dict[ScriptLanguage, float]]:
    owners: dict[str, list[ScriptLanguage]] = {}
    for code in LATIN_LANGUAGES:
        for word in LANGUAGES[code].keywords.function_words:
            owners.setdefault(word, []).append(code)
    return {word: {code: 1 / len(codes) for code in codes} for word, codes in owners.items()}


_WEIGHTS = _function_word_weights()


def latin_scores(text: str) -> dict[ScriptLanguage, float]:
    """Each Latin-script language's evidence in `text`: function words, telltale letters and the
    glossary's nouns (each weighed by how many languages share it)."""
    scores = dict.fromkeys(LATIN_LANGUAGES, 0.0)
    lowered = text.lower()
    nouns = _glossary_weights()
    for word in _LATIN_WORD.findall(lowered):
        word = word.replace("’", "'")
        elided = _ELIDED.match(word)
        if elided:  # l'océan, d'une, qu'il: French elision, and the word after it
            scores["fr"] += 0.5
            word = word[elided.end() :]
        for code, weight in _WEIGHTS.get(word, {}).items():
            scores[code] += weight
        for code, weight in nouns.get(word, {}).items():
            scores[code] += weight
    for code, letters in _TELLTALE_LETTERS.items():
        scores[code] += sum(lowered.count(letter) for letter in letters)
    return scores


_ELIDED = re.compile(r"^(?:[ldjmnstc]|qu)'")


@lru_cache(maxsize=1)
def _glossary_weights() -> dict[str, dict[ScriptLanguage, float]]:
    """The glossary's one-word nouns of the Latin-script languages but English (whose content
    words are no evidence against it), GLOSSARY_WORD_WEIGHT split among the languages sharing a
    word (sushi, Madrid say nothing). Imported late: the glossary's package imports this one."""
    from deployments.storyboard.fallback.glossary import BY_LANGUAGE

    owners: dict[str, list[ScriptLanguage]] = {}
    for code in LATIN_LANGUAGES:
        table = BY_LANGUAGE.get(code, {})
        for word in table:
            if " " not in word:
                owners.setdefault(word, []).append(code)
    english = {word.lower() for entry in _english_glossary() for word in entry.split()}
    return {
        word: {code: GLOSSARY_WORD_WEIGHT / len(codes) for code in codes}
        for word, codes in owners.items()
        if word not in english and len(codes) < len(LATIN_LANGUAGES) - 1
    }


def _english_glossary() -> list[str]:
    from deployments.storyboard.fallback.glossary import BY_EN

    return list(BY_EN)


def detect_language(text: str, default: ScriptLanguage = "en") -> ScriptLanguage:
    """The language `text` is written in, among SCRIPT_LANGUAGES (see the module's docstring).

    "关于AI的视频" is Chinese, "A video about 北京" English, "東京の夜のvlog" Japanese;
    text with no letters, or Latin-script text with too little evidence for any language
    (under MIN_LATIN_EVIDENCE: "O", "Le chat"), is `default`.
    """
    latin_words = len(re.findall(r"[A-Za-zÀ-ÿ]+", text))
    east = east_asian_count(text)
    if east and east >= latin_words:
        kana, hangul = kana_count(text), hangul_count(text)
        if kana or hangul:
            return "ja" if kana >= hangul else "ko"
        if cjk_count(text):
            return "zh"
    scores = latin_scores(text)
    best = max(scores.values())
    if best < MIN_LATIN_EVIDENCE:
        return default
    if scores["en"] == best:
        return "en"
    return next(code for code in LATIN_LANGUAGES if scores[code] == best)


def in_language(texts: object, language: ScriptLanguage) -> object:
    """`texts`' field for `language` (a beat's, a title's, a variation's, a style guide's)."""
    return getattr(texts, language)
