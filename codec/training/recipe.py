"""Configuration files: YAML sections mapped onto dataclasses, with command-line overrides.

A config file is a YAML mapping of sections, each one a dataclass given by a schema::

    trainer:            # -> TrainerConfig
      max_steps: 20000
      lr: 3.0e-4
    model:              # -> the task's model config (nested dataclasses allowed)
      encoder: {width: 256}

``load_config(path, ["trainer.lr=1e-4", "model.encoder.width=512"], schema)`` reads it,
applies the ``section.key=value`` overrides (values parsed as YAML scalars, so ``[0.8, 0.99]``
is a list and ``null`` is None) and returns one dataclass instance per section. Every
mistake is a ``ConfigError`` that names the offending key: an unknown key lists the valid
ones, a wrongly typed value says which type was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "dataclass_from_dict",
    "dataclass_to_dict",
    "load_config",
    "parse_override",
    "save_config",
]


class ConfigError(ValueError):
    """A configuration file, section or override is invalid; the message names the key."""


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _init_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it where YAML is loose
    (``1e-4`` is a string to PyYAML, ints are fine for floats, lists for tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _coerce(value, arm, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"{where}: {value!r} does not match {_type_name(tp)} ({'; '.join(errors)})"
        )
    if origin is typing.Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{where}: {value!r} is not one of {choices}")
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return dataclass_from_dict(tp, value, where)
    if origin in (list, Sequence) or tp in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(
                _coerce(v, a, f"{where}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        return tuple(value)
    if origin is dict or tp is dict or origin is Mapping:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = args if args else (Any, Any)
        return {
            _coerce(k, key_tp, where): _coerce(v, val_tp, _join(where, str(k)))
            for k, v in value.items()
        }
    if tp is bool:
        # No truthiness: a bool option fed 1.0 or "no" is a mistake worth reporting.
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML reads "1e-4" (no dot) as a string.
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{where}: expected a path, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def dataclass_from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build the dataclass ``cls`` from a (nested) mapping, strictly.

    Unknown keys, missing required keys and wrongly typed values raise ``ConfigError``
    naming ``where.key``; an unknown key's message lists the valid keys. Nested
    dataclass fields take nested mappings; missing keys keep their defaults.
    """
    if not _is_dataclass_type(cls):
        raise TypeError(f"{cls!r} is not a dataclass type")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    fields = _init_fields(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        label = where or cls.__name__
        raise ConfigError(
            f"unknown key {_join(where, str(unknown[0]))!r} in {label} ({cls.__name__}); "
            f"valid keys: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints.get(name, Any), _join(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {_join(where, name)!r} ({cls.__name__})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def dataclass_to_dict(obj: Any) -> Any:
    """The inverse of ``dataclass_from_dict``: plain dicts, lists, strings and numbers
    (tuples become lists, paths strings), ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: dataclass_to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if f.init
        }
    if isinstance(obj, Mapping):
        return {str(k): dataclass_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [dataclass_to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"section.key.sub=value"`` into its key path and YAML-parsed value."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {text!r} has an empty key component")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def _is_mapping_type(tp: Any) -> bool:
    return tp in (dict, Mapping, Any) or typing.get_origin(tp) in (dict, Mapping)


def _section_type(tp: Any, key: str) -> Any:
    """The arm of a union that can hold sub-key ``key`` (``float | dict[str, float]`` -> the
    dict; a union of dataclasses, e.g. the output heads' configs -> the first with that field)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if _is_dataclass_type(a) or _is_mapping_type(a)]
        with_key = [a for a in arms if not _is_dataclass_type(a) or key in _init_fields(a)]
        if len(arms) == 1 or with_key:
            return (with_key or arms)[0]
    return tp


def _check_override_path(schema: Mapping[str, type], parts: list[str], text: str) -> None:
    """Validate an override's key path against the schema, so the error names the override."""
    if parts[0] not in schema:
        raise ConfigError(
            f"override {text!r}: unknown section {parts[0]!r}; valid sections: {', '.join(schema)}"
        )
    tp: Any = schema[parts[0]]
    where = parts[0]
    for part in parts[1:]:
        tp = _section_type(tp, part)
        if _is_dataclass_type(tp):
            fields = _init_fields(tp)
            if part not in fields:
                raise ConfigError(
                    f"override {text!r}: unknown key {_join(where, part)!r}; "
                    f"valid keys of {where} ({tp.__name__}): {', '.join(fields)}"
                )
            tp = typing.get_type_hints(tp).get(part, Any)
        elif _is_mapping_type(tp):
            args = typing.get_args(tp)
            tp = args[1] if args else Any
        else:
            raise ConfigError(f"override {text!r}: {where} is a {_type_name(tp)}, not a section")
        where = _join(where, part)


def _set_path(raw: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"override {text!r}: {'.'.join(parts[: i + 1])} holds {child!r}, not a mapping"
            )
        node = child
    node[parts[-1]] = value


def load_config(
    path: str | Path | None,
    overrides: Sequence[str],
    schema: Mapping[str, type],
) -> dict[str, Any]:
    """Read a YAML config, apply ``section.key=value`` overrides, build one dataclass per section.

    Args:
        path: YAML file whose top level maps section names to mappings; None starts from
            the defaults alone.
        overrides: ``"section.key[.sub...]=value"`` strings, applied in order; values are
            parsed as YAML (``1e-4``, ``[0.8, 0.99]``, ``null``, ``cosine``).
        schema: section name -> dataclass type. Sections absent from the file get their
            defaults; a section absent from the schema is an error.

    Returns:
        section name -> dataclass instance, in schema order.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(path)!r}: top level must be a mapping of sections")
        raw = loaded
    unknown = [k for k in raw if k not in schema]
    if unknown:
        raise ConfigError(
            f"unknown section {unknown[0]!r} in {str(path)!r}; valid sections: {', '.join(schema)}"
        )
    for text in overrides:
        parts, value = parse_override(text)
        _check_override_path(schema, parts, text)
        if len(parts) == 1:
            if not isinstance(value, dict):
                raise ConfigError(f"override {text!r}: a whole section needs a mapping value")
            raw[parts[0]] = value
        else:
            _set_path(raw, parts, value, text)
    return {name: dataclass_from_dict(cls, raw.get(name), name) for name, cls in schema.items()}


def save_config(config: Mapping[str, Any], path: str | Path) -> None:
    """Write sections of dataclasses (as returned by ``load_config``) back to YAML."""
    text = yaml.safe_dump(dataclass_to_dict(config), sort_keys=False, allow_unicode=True)
    Path(path).write_text(text, encoding="utf-8")
