"""The pydantic base of the configuration file's tables, and one-line errors that name the key.

Every table of ``kiosk.toml`` (`kiosk.config`, `kiosk.hardware.config`) is a `TableModel`: frozen,
strict, and closed (a key it does not declare is an error that lists the keys it does). Field
types are `Annotated` with a validator from here, so a wrong value is reported in the project's
words ("expected a positive number of seconds, got -1") rather than pydantic's.

`first_problem` turns a `pydantic.ValidationError` into the message the kiosk prints: the dotted
key (``rules.keypad_window_s``, ``doors.serial.boards[0]``), a colon, what is wrong. A validator
that checks one key from the table's level (a check across keys) raises `problem` with that key,
so the message still names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

E = TypeVar("E", bound=Enum)

_CONFIG = "config"
_UNKNOWN_KEY = "unknown_key"
_NOT_A_TABLE = "not_a_table"


def problem(message: str, *, key: str | int | None = None) -> PydanticCustomError:
    """A validation error with the project's wording.

    Args:
        message: What is wrong, without the key (the key is prefixed when reported).
        key: The key the problem is about, when raised from the validator of the table holding
            it (a check across keys); None when the error's location already names it.
    """
    return PydanticCustomError(_CONFIG, message, None if key is None else {"key": key})


class TableModel(BaseModel):
    """A table of the configuration file: frozen, strict, every key declared.

    Subclasses declare their keys as fields (with the types below); `extra_keys` may name keys
    that are read elsewhere (the ``[doors]`` table's backend sub-tables).
    """

    model_config = ConfigDict(frozen=True, strict=True, arbitrary_types_allowed=True)

    extra_keys: ClassVar[Callable[[], tuple[str, ...]] | None] = None

    @classmethod
    def known_keys(cls) -> tuple[str, ...]:
        """The keys this table may hold, in declaration order."""
        keys = tuple(field.alias or name for name, field in cls.model_fields.items())
        return keys + (cls.extra_keys() if cls.extra_keys is not None else ())

    @model_validator(mode="before")
    @classmethod
    def _a_table_of_known_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise PydanticCustomError(
                _NOT_A_TABLE, "expected a table", {"got": type(data).__name__}
            )
        known = cls.known_keys()
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise PydanticCustomError(
                _UNKNOWN_KEY, "unknown key", {"key": unknown[0], "known": ", ".join(known)}
            )
        return data


def first_problem(
    error: ValidationError, *, root: str = "", style: str = "kiosk", top_level_tables: bool = False
) -> str:
    """The first problem of ``error`` as one line naming its key.

    Args:
        error: What pydantic raised.
        root: The dotted path of the validated table (``doors``); empty for the whole file.
        style: How unknown keys are reported: ``kiosk`` (``kiosk.typo: unknown key; known keys
            here: ...``) or ``hardware`` (``doors: unknown key 'typo'; known: ...``), the two
            wordings the file's users and tests know.
        top_level_tables: Whether a missing key at the root is a table (``[kiosk] table is
            required``).
    """
    details = error.errors(include_url=False)[0]
    loc: tuple[str | int, ...] = tuple(details["loc"])
    context = details.get("ctx") or {}
    kind = details["type"]
    if kind == _UNKNOWN_KEY:
        where = _dotted(root, loc)
        key, known = context["key"], context["known"]
        if style == "hardware":
            return f"{where}: unknown key {key!r}; known: {known}"
        return f"{_dotted(where, (key,))}: unknown key; known keys here: {known}"
    if kind == _NOT_A_TABLE:
        return f"{_dotted(root, loc)}: expected a table, got {context['got']}"
    if kind == "missing":
        if top_level_tables and not root and len(loc) == 1:
            return f"[{loc[0]}] table is required"
        return f"{_dotted(root, loc)} is required"
    if kind == _CONFIG and "key" in context:
        loc = (*loc, context["key"])
    where = _dotted(root, loc)
    return f"{where}: {details['msg']}" if where else str(details["msg"])


def _dotted(root: str, loc: tuple[str | int, ...]) -> str:
    where = root
    for part in loc:
        if isinstance(part, int):
            where = f"{where}[{part}]"
        else:
            where = f"{where}.{part}" if where else str(part)
    return where


def is_int(value: object) -> bool:
    """Whether ``value`` is a whole number; TOML keeps them apart, Python does not: True is not."""
    return isinstance(value, int) and not isinstance(value, bool)


def _non_empty_text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        shown = "an empty string" if isinstance(value, str) else type(value).__name__
        raise problem(f"expected a non-empty string, got {shown}")
    return value


def _positive_seconds(value: object) -> float:
    if not (is_int(value) or isinstance(value, float)) or not value > 0:  # type: ignore[operator]
        raise problem(f"expected a positive number of seconds, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _count_of_at_least_one(value: object) -> int:
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise problem(f"expected a whole number of at least 1, got {value!r}")
    return value  # type: ignore[return-value]


Text = Annotated[str, PlainValidator(_non_empty_text)]
"""A non-empty string."""

Seconds = Annotated[float, PlainValidator(_positive_seconds)]
"""A positive number of seconds (an integer or a float)."""

AtLeastOne = Annotated[int, PlainValidator(_count_of_at_least_one)]
"""A whole number of at least 1."""


# The hardware tables' wording: "wrong type bool", "must be at least 1, got 0".


def of_type(*kinds: type) -> PlainValidator:
    """A validator accepting only instances of ``kinds`` (never a bool unless ``bool`` is one)."""

    def check(value: object) -> object:
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise problem(f"wrong type {type(value).__name__}")
        return value

    return PlainValidator(check)


def _number(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise problem(f"wrong type {type(value).__name__}")
    return float(value)


def _positive_int(value: object) -> int:
    if not is_int(value):
        raise problem(f"wrong type {type(value).__name__}")
    if value < 1:  # type: ignore[operator]
        raise PydanticCustomError(_CONFIG, "must be at least 1, got {value}", {"value": value})
    return value  # type: ignore[return-value]


def enum_of(kind: type[E]) -> PlainValidator:
    """A validator reading a member of ``kind`` by its value, case-insensitively."""

    def check(value: object) -> E:
        if isinstance(value, kind):
            return value
        if not isinstance(value, str):
            raise problem(f"wrong type {type(value).__name__}")
        try:
            return kind(value.strip().lower())
        except ValueError:
            names = ", ".join(repr(member.value) for member in kind)
            raise problem(f"{value!r} is not one of {names}") from None

    return PlainValidator(check)


Number = Annotated[float, PlainValidator(_number)]
"""An integer or a float (hardware wording)."""

PositiveInt = Annotated[int, PlainValidator(_positive_int)]
"""A whole number of at least 1 (hardware wording)."""

Flag = Annotated[bool, of_type(bool)]
"""A boolean (hardware wording)."""

Whole = Annotated[int, of_type(int)]
"""A whole number (hardware wording)."""


def _raw_table(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise PydanticCustomError(_NOT_A_TABLE, "expected a table", {"got": type(value).__name__})
    return dict(value)


RawTable = Annotated[dict[str, Any], PlainValidator(_raw_table)]
"""A table validated elsewhere (by the hardware layer), only checked to be a table here."""
