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
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationError

from deployments.storyboard.language import cjk_count
from deployments.storyboard.slots import slots_in

DATA_DIR = Path(__file__).parent / "data"

M = TypeVar("M", bound=BaseModel)


class ContentError(ValueError):
    """A content file that does not load; the message names the file and the key of each fault."""


class ContentModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _english(text: str) -> str:
    if cjk_count(text):
        raise ValueError("must be English (it goes into English output): no Chinese characters")
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
