"""What every document model shares: the schema version, the model configuration, text fields."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

SCHEMA_VERSION: Literal[1] = 1


class Document(BaseModel):
    """Common configuration of every document model."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=False,
        frozen=True,
        populate_by_name=True,
    )


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_LANGUAGE_RE = re.compile(r"^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")
_VOICE_RE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}-[A-Za-z0-9]+(-[A-Za-z0-9]+)*\Z")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}\Z")


def _pattern(regex: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


Email = Annotated[str, Strict(), _pattern(_EMAIL_RE, "an email address like name@example.org")]
LanguageCode = Annotated[str, Strict(), _pattern(_LANGUAGE_RE, "a BCP 47 language code (en-US)")]
TtsVoice = Annotated[
    str, Strict(), _pattern(_VOICE_RE, "a Google Cloud TTS voice id (en-US-Neural2-D)")
]
ModelName = Annotated[
    str, Strict(), _pattern(_NAME_RE, "a lowercase name ([a-z0-9_.-], at most 64 chars)")
]
Action = Annotated[
    str, Strict(), _pattern(_NAME_RE, "an action name like scene_generated ([a-z0-9_.-])")
]
ShortText = Annotated[str, Strict(), Field(max_length=1024)]
