"""Loading the storyboard's content files (data/*.yaml): text that editors change, kept out of code.

Each file is parsed with `yaml.safe_load` and validated by a frozen pydantic model when its module
is imported, so a broken file stops the service at start-up, not in a request. Every problem is
reported as `<file>: <key path>: <what is wrong>`, e.g.
`.../data/genres/food.yaml: development.2.camera: Input should be 'wide shot', ...`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    create_model,
)

from deployments.storyboard.constants import LANGUAGE_SCRIPTS, SCRIPT_LANGUAGES, ScriptLanguage
from deployments.storyboard.language import (
    cjk_count,
    east_asian_count,
    hangul_count,
    kana_count,
)
from deployments.storyboard.slots import SLOT, slots_in

DATA_DIR = Path(__file__).parent / "data"

M = TypeVar("M", bound=BaseModel)


class ContentError(ValueError):
    """A content file that does not load; the message names the file and the key of each fault."""


class ContentModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _english(text: str) -> str:
    if east_asian_count(text):
        raise ValueError("must be English (it goes into English output): no Chinese characters")
    return text


def _written_in(language: ScriptLanguage) -> AfterValidator:
    """Text of `language` in its script: Latin-script text holds no hanzi, kana or hangul;
    Japanese holds kana or kanji and no hangul; Korean holds hangul and no kana; Chinese holds
    no kana or hangul (slots aside: they take the prompt's words)."""
    script = LANGUAGE_SCRIPTS[language]

    def check(text: str) -> str:
        bare = SLOT.sub("", text)
        if script == "latin":
            return _english(text) if language == "en" else _latin(text, language)
        own = {"hanzi": cjk_count, "kana": east_asian_count, "hangul": hangul_count}[script]
        foreign = {"hanzi": kana_count(bare) + hangul_count(bare), "kana": hangul_count(bare),
                   "hangul": kana_count(bare)}[script]  # fmt: skip
        if foreign or (bare.strip() and not own(bare) and not SLOT.search(text)):
            raise ValueError(f"must be written in {language} ({script})")
        return text

    return AfterValidator(check)


def _latin(text: str, language: str) -> str:
    if east_asian_count(text):
        raise ValueError(f"must be written in {language} (Latin script): no hanzi, kana or hangul")
    return text


def _lowercase(text: str) -> str:
    if text != text.lower():
        raise ValueError("must be lower case (requests are matched lower-cased)")
    return text


def _slots(text: str) -> str:
    slots_in(text)  # raises ValueError naming the problem
    return text


Text = Annotated[str, StringConstraints(pattern=r"\S")]  # not empty, not only blanks
EnglishText = Annotated[Text, AfterValidator(_english)]
Word = Annotated[str, StringConstraints(pattern=r"^\S(.*\S)?$")]  # no blanks around it
LowerWord = Annotated[Word, AfterValidator(_lowercase)]
EnglishWord = Annotated[Word, AfterValidator(_english)]


def _no_braces(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError("used as written: no slots or braces here")
    return text


# Template text: slots as storyboard/slots.py defines them ({topic}, {subject}, {KIND|default}).
SlotText = Annotated[Text, AfterValidator(_slots)]
EnglishSlotText = Annotated[EnglishText, AfterValidator(_slots)]
FixedText = Annotated[Text, AfterValidator(_no_braces)]  # used as written
FixedEnglish = Annotated[EnglishText, AfterValidator(_no_braces)]
# The same, per script language (the fallback's texts, titles, topics, variations, style guides).
SLOT_TEXT: dict[ScriptLanguage, Any] = {
    code: Annotated[SlotText, _written_in(code)] for code in SCRIPT_LANGUAGES
}
FIXED_TEXT: dict[ScriptLanguage, Any] = {
    code: Annotated[FixedText, _written_in(code)] for code in SCRIPT_LANGUAGES
}


def per_language(
    name: str, texts: dict[ScriptLanguage, Any], base: type[M], **fields: Any
) -> type[M]:
    """A content model with one required field per script language (typed by `texts`), after
    `fields`: the one place a file's zh/en/ja/... keys are declared."""
    languages = {code: (texts[code], ...) for code in SCRIPT_LANGUAGES}
    return create_model(name, __base__=base, **fields, **languages)  # type: ignore[call-overload]


def load_file(path: Path, model: type[M], context: dict[str, Any] | None = None, **extra: Any) -> M:
    """`path`'s YAML as a validated `model`; `extra` keys come from the loader, not the file."""
    data = read_yaml(path)
    if extra and isinstance(data, dict):
        if clash := sorted(extra.keys() & data.keys()):
            raise content_error(path, clash[0], "comes from the file name; remove the key")
        data = {**data, **extra}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise ContentError("\n".join(_describe(path, error.errors()))) from None


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ContentError(f"{path}: {error}") from None


def content_error(path: Path, key: str, message: str) -> ContentError:
    return ContentError(f"{path}: {key}: {message}")


def _describe(path: Path, errors: Iterable[Any]) -> list[str]:
    lines = []
    for error in errors:
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"]
        if error["type"] != "missing" and isinstance(error["input"], str | int | float | bool):
            message += f" (found {error['input']!r})"
        lines.append(f"{path}: {key}: {message}" if key else f"{path}: {message}")
    return lines
