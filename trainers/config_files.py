"""Config files: YAML read into a typed config (trainers/config.py builds and checks it) with dotted
command-line overrides on top, and a config saved back as YAML."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from trainers.atomic import atomic_write
from trainers.config import ConfigError, check_override_keys, from_dict, lines_of_file, to_dict

T = TypeVar("T")


# PyYAML follows YAML 1.1, where "1e-3" and "5e4" are strings; configs mean numbers there.
# The same resolver goes on the dumper, so a *string* "1e-3" is quoted and survives a round trip.
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


for _cls in (_Loader, _Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789."))


def _key_lines(node: yaml.Node, path: str = "") -> dict[str, int]:
    """1-based line of every key path of a composed YAML document (list items as path[i])."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = f"{path}.{key.value}" if path else str(key.value)
            lines[sub] = key.start_mark.line + 1
            lines.update(_key_lines(value, sub))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            lines[sub] = item.start_mark.line + 1
            lines.update(_key_lines(item, sub))
    return lines


def parse_overrides(items: Sequence[str]) -> dict:
    """["a.b=1", "c=[x, y]"] -> {"a": {"b": 1}, "c": ["x", "y"]}; a later item wins over an earlier one."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ConfigError(f"override {item!r} is malformed; write it as key.path=value, e.g. train.lr=1e-3")
        try:
            value = yaml.load(raw, Loader=_Loader)
        except yaml.YAMLError as exc:
            why = getattr(exc, "problem", None) or exc
            raise ConfigError(f"override {item!r}: value {raw!r} is not valid YAML ({why}); quote it") from None
        node = result
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part.strip(), {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with an earlier override of '{'.'.join(parts[: i + 1])}'")
        node[parts[-1].strip()] = value
    return result


def merge(base: Mapping, override: Mapping) -> dict:
    """Deep merge into a new dict: mappings merge key by key, anything else (lists too) is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    cls: type[T],
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    *,
    base: Mapping | None = None,
) -> T:
    """`base`, then the YAML file at `path`, then `overrides` (key.path=value), built into `cls`."""
    data: dict[str, Any] = merge({}, base or {})
    source = ""
    lines: dict[str, int] = {}
    if path is not None:
        source = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {source}; check the path") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {source}: {exc}") from None
        try:
            loaded = yaml.load(text, Loader=_Loader)
            lines = _key_lines(yaml.compose(text, Loader=_Loader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
            what = "; ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None))
                             if part) or str(exc)
            raise ConfigError(f"{where}: not valid YAML: {what}") from None
        if loaded is None:  # an empty file means "all defaults"
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(
                f"{source}: the top level must be a mapping of keys, got {type(loaded).__name__}; write key: value lines"
            )
        data = merge(data, loaded)
    parsed = parse_overrides(overrides)
    if parsed:
        check_override_keys(cls, parsed)
        data = merge(data, parsed)
        source = f"{source} + overrides" if source else "command-line overrides"
        # A value given on the command line has no line in the file.
        overridden = [item.partition("=")[0].strip() for item in overrides]
        lines = {k: v for k, v in lines.items() if not any(k == o or k.startswith(f"{o}.") for o in overridden)}
    with lines_of_file(os.fspath(path) if path is not None else "", lines):
        return from_dict(cls, data, source=source)




def save_config(obj: Any, path: str | os.PathLike) -> None:
    """Write `obj` as YAML in field order, atomically, so a crash never leaves a half-written config."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(to_dict(obj), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o644)  # a saved config should be readable like any file, whatever the umask

    atomic_write(target, write, fsync=True)
