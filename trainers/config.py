"""Typed configs: dataclasses built from plain data, and back.

Each stage declares one (possibly nested) config dataclass; this module turns plain YAML data
into it with strict checking, so that a typo or a wrong type fails at start-up with the dotted
key path, the file, and the fix, instead of hours into a run. Reading YAML files and command-line
overrides is trainers/config_files.py.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import functools
import hashlib
import json
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key path (and file:line) and the fix. `problems`
    holds each problem's line: a config is checked whole, so that one run shows every mistake, not the first."""

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]

    @classmethod
    def of(cls, problems: Sequence[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(problems[0])
        return cls(f"{len(problems)} problems in the config:\n  " + "\n  ".join(problems), problems)


# The line of each key path in the YAML file being built (load_config sets it), so errors point at file:line.
_LINES: contextvars.ContextVar[tuple[str, dict[str, int]]] = contextvars.ContextVar("_LINES", default=("", {}))


@contextlib.contextmanager
def lines_of_file(file: str, lines: dict[str, int]) -> Iterator[None]:
    """While a config read from `file` is built, its errors name the line of each key path (`lines`)."""
    token = _LINES.set((file, lines))
    try:
        yield
    finally:
        _LINES.reset(token)


# A field added after configs were hashed and saved: to_dict writes it only when it differs from its default,
# so every config that leaves it unset keeps its hash (unit keys, feature caches) and its saved file.
WRITTEN_WHEN_SET = {"written_when_set": True}


def _line_of(path: str) -> str | None:
    """`file:line` of a key path read from the YAML file, or of its nearest enclosing key."""
    file, lines = _LINES.get()
    while path:
        if path in lines:
            return f"{file}:{lines[path]}"
        path = path.rpartition(".")[0] if "." in path else (path.rpartition("[")[0] if "[" in path else "")
    return None


def _where(source: str, path: str) -> str:
    key = f"'{path}'" if path else "the top level"
    line = _line_of(path) if path else None
    if line:
        return f"{line}: {key}" + (" (+ command-line overrides)" if source.endswith("+ overrides") else "")
    return f"{source}: {key}" if source else key


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except NameError as exc:
        raise TypeError(
            f"cannot resolve the type hints of {cls.__qualname__} ({exc}); "
            "define config dataclasses (and the types they name) at module level"
        ) from None


def _init_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _check_keys(cls: type, data: Mapping, path: str, source: str) -> None:
    valid = [f.name for f in _init_fields(cls)]
    problems = []
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{_where(source, path)}: key {key!r} is not a string; config keys are field names")
        if key in valid:
            continue
        full = f"{path}.{key}" if path else key
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"; did you mean '{path + '.' if path else ''}{close[0]}'?" if close else "."
        under = f"under '{path}'" if path else "at the top level"
        line = _line_of(full) if source != "command-line overrides" else None
        prefix = f"{line or source}: " if line or source else ""
        problems.append(f"{prefix}unknown key '{full}'{hint} Valid keys {under}: {', '.join(valid)}")
    if problems:
        raise ConfigError.of(problems)


def _type_error(value: Any, hint: Any, path: str, source: str, extra: str = "") -> ConfigError:
    fix = extra or f"fix it in the YAML or override it with {path or 'key'}=<{_type_name(hint)}>"
    return ConfigError(
        f"{_where(source, path)} expects {_type_name(hint)}, got {value!r} ({type(value).__name__}); {fix}"
    )


def _coerce(value: Any, hint: Any, path: str, source: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if hint is type(None):
        if value is not None:
            raise _type_error(value, hint, path, source)
        return None
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: keep X's own, more specific error
            return _coerce(value, options[0], path, source)
        for arg in options:
            try:
                return _coerce(value, arg, path, source)
            except ConfigError:
                continue
        raise _type_error(value, hint, path, source)
    if origin is Literal:
        # `True == 1`, so compare types as well: Literal[1] must not accept True.
        if any(value == c and type(value) is type(c) for c in args):
            return value
        choices = ", ".join(repr(c) for c in args)
        raise ConfigError(f"{_where(source, path)} must be one of {choices}; got {value!r}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise _type_error(value, hint, path, source, f"give a mapping of {hint.__name__} fields")
        return _build(hint, value, path, source)
    if origin in (list, Sequence) or hint is list:
        if not isinstance(value, (list, tuple)):
            raise _type_error(value, hint, path, source, "give a YAML list, e.g. [a, b]")
        item = args[0] if args else Any
        return [_coerce(v, item, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise _type_error(value, hint, path, source, "give a YAML list, e.g. [a, b]")
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            item = args[0] if args else Any
            return tuple(_coerce(v, item, f"{path}[{i}]", source) for i, v in enumerate(value))
        if args == ((),):  # tuple[()]
            args = ()
        if len(value) != len(args):
            raise ConfigError(
                f"{_where(source, path)} expects {_type_name(hint)} ({len(args)} items), got {len(value)} items "
                f"{list(value)!r}; give exactly {len(args)} values"
            )
        return tuple(_coerce(v, a, f"{path}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise _type_error(value, hint, path, source, "give a YAML mapping")
        key_t, val_t = args if args else (Any, Any)
        return {
            _coerce(k, key_t, f"{path}.<key {k!r}>", source): _coerce(v, val_t, f"{path}.{k}", source)
            for k, v in value.items()
        }
    # bool is a subclass of int, so it needs rejecting explicitly for int and float.
    if hint is bool:
        if not isinstance(value, bool):
            raise _type_error(value, hint, path, source, "write true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, hint, path, source)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, hint, path, source)
        return float(value)  # int -> float keeps to_dict/config_hash independent of how it was written
    if hint is str:
        if not isinstance(value, str):
            raise _type_error(value, hint, path, source, "quote it so that YAML reads a string")
        return value
    if isinstance(hint, type) and issubclass(hint, PurePath):
        if not isinstance(value, (str, PurePath)):
            raise _type_error(value, hint, path, source)
        return hint(value)
    if isinstance(hint, type) and not args:
        if not isinstance(value, hint):
            raise _type_error(value, hint, path, source)
        return value
    raise TypeError(f"{_where(source, path)}: unsupported annotation {hint!r} in a config dataclass")


def _build(cls: type[T], data: Mapping[str, Any], path: str, source: str) -> T:
    if not isinstance(data, Mapping):
        raise _type_error(data, cls, path, source, f"give a mapping of {cls.__name__} fields")
    problems: list[str] = []
    try:
        _check_keys(cls, data, path, source)
    except ConfigError as error:
        problems += error.problems
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in _init_fields(cls):
        sub = f"{path}.{f.name}" if path else f.name
        if f.name in data:
            value = data[f.name]
            if f.default_factory is not dataclasses.MISSING and isinstance(value, Mapping):
                default = f.default_factory()
                if dataclasses.is_dataclass(default):
                    # A partial section keeps its parent's defaults for the keys it leaves out (the
                    # baseline's optim: wsd, betas (0.9, 0.999)), not the bare defaults of the nested class;
                    # a key it gives is built as given (a nested section again by this rule).
                    value = {**to_dict(default), **value}
            try:
                kwargs[f.name] = _coerce(value, hints[f.name], sub, source)
            except ConfigError as error:
                problems += error.problems
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{_where(source, sub)} is required but missing; add it to the YAML or pass {sub}=<value>")
    if problems:
        raise ConfigError.of(problems)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ checks
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{_where(source, path)} is invalid: {exc}; fix the values under it") from exc


def _validate_tree(obj: Any, path: str, source: str) -> list[str]:
    """Every validate() problem of the tree. Children first, so a parent's validate() may rely on its parts
    being sound (it is skipped where they are not); defaults are walked too, as they never passed _build."""
    problems: list[str] = []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            problems += _validate_tree(getattr(obj, f.name), f"{path}.{f.name}" if path else f.name, source)
        check = getattr(obj, "validate", None)
        if callable(check) and not problems:
            try:
                check()
            except ConfigError as exc:
                problems += exc.problems
            except ValueError as exc:
                problems.append(f"{_where(source, path)} is invalid: {exc}; fix the values under it")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            problems += _validate_tree(v, f"{path}[{i}]", source)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            problems += _validate_tree(v, f"{path}.{k}", source)
    return problems


def from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "") -> T:
    """Build the dataclass `cls` from plain data, checking keys and types, then run validate()."""
    obj = _build(cls, data, "", source)
    problems = _validate_tree(obj, "", source)
    if problems:
        raise ConfigError.of(problems)
    return obj


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # init=False fields are derived; writing them out would make from_dict reject the file.
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.init and not (f.metadata.get("written_when_set") and getattr(obj, f.name) == _default(f))}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    return obj


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def to_dict(obj: Any) -> dict:
    """Plain YAML/JSON-ready data (tuples -> lists, paths -> str) that from_dict reads back."""
    if not isinstance(obj, Mapping) and not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        raise TypeError(f"to_dict expects a dataclass instance or a mapping, got {type(obj).__name__}")
    return _plain(obj)


def check_override_keys(cls: type, data: Mapping, path: str = "") -> None:
    """The keys of parsed command-line overrides against `cls`, checked before merging so that a typo on the
    command line is blamed on the command line."""
    _check_keys(cls, data, path, "command-line overrides")
    hints = _hints(cls)
    for key, value in data.items():
        hint = hints[key]
        union = typing.get_origin(hint) in (Union, types.UnionType)
        nested = [a for a in (typing.get_args(hint) if union else (hint,)) if dataclasses.is_dataclass(a)]
        if len(nested) == 1 and isinstance(value, Mapping):
            check_override_keys(nested[0], value, f"{path}.{key}" if path else key)


def config_hash(obj: Any, length: int = 12) -> str:
    """Short sha256 of the canonical JSON of to_dict(obj): equal configs hash equal in any process."""
    if not 1 <= length <= 64:
        raise ValueError(f"length must be in 1..64, got {length}")
    canon = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:length]
