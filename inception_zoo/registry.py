"""The model registry: one :class:`~inception_zoo.records.ModelRecord` per model, and aliases.

:func:`~inception_zoo.create_model` builds from these records; the docs, the benchmark, training and the
tests read them.
"""

from __future__ import annotations

import difflib
import fnmatch

from .records import ModelRecord, Pretrained

__all__ = [
    "register_model",
    "list_models",
    "list_aliases",
    "list_records",
    "list_pretrained",
    "get_record",
    "get_pretrained",
    "resolve_name",
    "is_model",
    "unregister_model",
    "UnknownModelError",
]

_RECORDS: dict[str, ModelRecord] = {}
_ALIASES: dict[str, str] = {}


class UnknownModelError(KeyError):
    """Raised for a model name that is neither registered nor an alias.

    A :class:`KeyError`, so ``except KeyError`` catches it; its message lists the closest registered names.
    """

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


def error_message(error: BaseException) -> str:
    """The text of ``error`` for a one-line message: a plain :class:`KeyError`'s message without the quotes
    its ``str()`` adds (one that is not text, e.g. a bare number, as "missing key 105"), any other error's
    ``str()`` unchanged."""
    if type(error) is KeyError and len(error.args) == 1:
        key = error.args[0]
        return key if isinstance(key, str) else f"missing key {key!r}"
    return str(error)


def register_model(record: ModelRecord) -> ModelRecord:
    """Register a model's record, and its aliases; returns the record. The record checked its own fields
    when it was made; its ``params`` are asserted against a build by the tests of the shipped models
    (``count_params(create_model(name)) == record.params`` checks one of yours).

    Raises:
        TypeError: not a :class:`~inception_zoo.records.ModelRecord`.
        ValueError: the name or an alias is already registered.
    """
    if not isinstance(record, ModelRecord):
        raise TypeError(f"register_model takes a ModelRecord, got {type(record).__name__}")
    for name in (record.name, *record.aliases):
        if name in _RECORDS or name in _ALIASES:
            raise ValueError(f"model {name!r} is already registered")
    _RECORDS[record.name] = record
    for alias in record.aliases:
        _ALIASES[alias] = record.name
    return record


def unregister_model(name: str) -> None:
    """Remove a model and its aliases (for tests and interactive experiments).

    Raises:
        UnknownModelError (a KeyError): ``name`` is neither registered nor an alias.
    """
    record = _RECORDS.pop(resolve_name(name))
    for alias in record.aliases:
        _ALIASES.pop(alias, None)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered model names matching an fnmatch pattern (``"*resnet*"``), each once.

    An alias matching the pattern contributes the model it names (``list_models("googlenet")`` is
    ``["inception_v1"]``); aliases themselves are never listed.

    Raises:
        TypeError: a pattern that is not a string.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"list_models pattern must be a string such as '*resnet*', got {pattern!r}")
    names = {n for n in _RECORDS if fnmatch.fnmatchcase(n, pattern)}
    names |= {target for alias, target in _ALIASES.items() if fnmatch.fnmatchcase(alias, pattern)}
    return sorted(names)


def list_records(pattern: str = "*") -> list[ModelRecord]:
    """The records of ``list_models(pattern)``, in the same order."""
    return [_RECORDS[name] for name in list_models(pattern)]


def list_aliases() -> dict[str, str]:
    """Alias -> model name."""
    return dict(sorted(_ALIASES.items()))


def is_model(name: str) -> bool:
    """True if ``name`` is a registered model or alias."""
    return name in _RECORDS or name in _ALIASES


def get_record(name: str) -> ModelRecord:
    """The record of a model name or alias.

    Raises:
        UnknownModelError (a KeyError): unknown name; the message lists the closest registered names.
        TypeError: a name that is not a string.
    """
    return _RECORDS[resolve_name(name)]


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted ``"<model>.<tag>"`` names of every published checkpoint matching an fnmatch pattern
    (``list_pretrained("inception_v3*")``); the first tag of each model is its default.

    Raises:
        TypeError: a pattern that is not a string.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"list_pretrained pattern must be a string such as 'inception_v3*', got {pattern!r}")
    names = (f"{r.name}.{p.tag}" for r in _RECORDS.values() for p in r.pretrained)
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def get_pretrained(name: str) -> tuple[ModelRecord, Pretrained]:
    """The record and the published checkpoint of ``"<model>.<tag>"``, or of ``"<model>"`` (its default
    tag, the first of ``record.pretrained``).

    Raises:
        UnknownModelError (a KeyError): unknown model, or unknown tag (the message lists the closest tags).
        ValueError: a model without published weights.
    """
    model, dot, tag = name.partition(".") if isinstance(name, str) else (name, "", "")
    record = get_record(model)
    if not record.pretrained:
        others = [r.name for r in _RECORDS.values() if r.pretrained and r.paper == record.paper]
        hint = f"; published weights of the same paper: {', '.join(others)}" if others else ""
        raise ValueError(f"{record.name} has no published weights (tags: none){hint}; load a checkpoint by path "
                         "instead")
    if not dot:
        return record, record.pretrained[0]
    for row in record.pretrained:
        if row.tag == tag:
            return record, row
    known = list_pretrained()
    close = difflib.get_close_matches(f"{record.name}.{tag}", known, n=3, cutoff=0.5)
    tags = ", ".join(f"{record.name}.{p.tag}" for p in record.pretrained)
    raise UnknownModelError(
        f"unknown pretrained tag {name!r}; closest: {', '.join(close) or '-'}; {record.name}'s tags: {tags}"
    )


def resolve_name(name: str) -> str:
    """The registered model name for a name or an alias (raises as :func:`get_record`)."""
    if not isinstance(name, str):
        raise TypeError(f"a model name must be a string such as 'inception_v3', got {name!r}")
    if name in _RECORDS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    known = sorted(_RECORDS) + sorted(_ALIASES)
    lowered = {k.lower(): k for k in known}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
    hint = f"closest: {', '.join(close)}" if close else f"registered: {', '.join(sorted(_RECORDS))}"
    raise UnknownModelError(f"unknown model {name!r}; {hint}")
