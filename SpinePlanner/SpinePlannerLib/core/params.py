"""One converter between parameter dataclasses and plain (JSON) dicts, for every module.

Every operation's settings are a plain dataclass in its Lib (validated in ``__post_init__``);
:func:`from_dict` builds one from a nested dict of overrides (a ``--params`` file section, see
:mod:`SpinePlannerLib.planning.params_file` for the file format) and :func:`to_dict` /
:func:`to_flat_dict` give the dict back (``plan.json``, reports).

Rules of :func:`from_dict`
--------------------------
* missing keys keep the dataclass default; unknown keys are a ``ValueError`` naming the dotted
  path (``segmentation.cord: unknown parameter(s) ['x']; known: [...]``);
* a nested dataclass field takes a dict (or an instance), recursively; a dotted key
  ``"group.field"`` is the same as ``{"group": {"field": ...}}``;
* ``tuple[...]`` fields (and bare ``tuple`` fields whose default is a tuple) take JSON lists;
  ``Optional[X]`` takes ``null``; ``Literal[...]`` must be one of its values; an ``Enum`` field
  takes the member or its value; ``bool``, ``int``, ``float`` and ``str`` fields are type-checked
  (an ``int`` is accepted for a ``float``);
* a dataclass may define a classmethod ``expand_shorthands(data) -> dict`` that rewrites its own
  documented short forms into the canonical nested dict before parsing;
* every dataclass is built through its constructor, so its ``__post_init__`` validation runs;
  its ``ValueError`` is re-raised prefixed with the dotted path.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _optional_inner(tp):
    """``X`` for ``Optional[X]`` / ``X | None``; None otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _split_dotted(data: Mapping, where: str) -> dict:
    """``{"a.b": v}`` -> ``{"a": {"b": v}}`` (merged with an explicit ``{"a": {...}}``)."""
    out = {k: v for k, v in data.items() if "." not in str(k)}
    for key, value in data.items():
        head, dot, rest = str(key).partition(".")
        if dot:
            group = out.get(head, {})
            if not isinstance(group, Mapping):
                raise ValueError(f"{where}.{head}: given both as a value and as a group")
            out[head] = {**group, rest: value}
    return out


def _convert(tp, value, default, where: str):
    """``value`` (from JSON) as the field type ``tp`` wants it; ``ValueError`` naming ``where``."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _convert(inner, value, None, where)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"{where}: must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise ValueError(f"{where}: must be one of {[m.value for m in tp]}, got {value!r}") from None
    if tp is tuple or origin is tuple:
        if tp is tuple and not isinstance(default, tuple):
            return value
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list of values, got {value!r}")
        return tuple(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
    return value


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def from_dict(cls, data=None, *, where: str = ""):
    """Build the parameter dataclass ``cls`` from a nested dict of overrides.

    Parameters
    ----------
    cls : dataclass type
    data : dict, instance of ``cls`` or None
        Overrides (see the module docstring for the rules); an instance is returned as it is,
        None gives the defaults.
    where : str
        Dotted name of ``data`` for error messages (e.g. the ``--params`` section).

    Raises
    ------
    ValueError
        Unknown key, wrong type or a value the dataclass's own validation refuses; the message
        starts with the dotted path of the offending setting.
    """
    if isinstance(data, cls):
        return data
    where = where or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping of settings, got {data!r}")
    data = dict(data)
    if hasattr(cls, "expand_shorthands"):
        data = cls.expand_shorthands(data)
    data = _split_dotted(data, where)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {unknown}; known: {sorted(fields)}")
    hints = _hints(cls)
    kwargs = {name: _convert(hints[name], value, _default(fields[name]), f"{where}.{name}")
              for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def to_dict(obj) -> dict:
    """Nested plain dict of a parameter dataclass (tuples kept, enums as their values)."""

    def plain(value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return value

    return plain(obj)


def to_flat_dict(obj) -> dict:
    """``{"group.field": value}`` for every setting of a (nested) parameter dataclass."""
    out = {}
    for key, value in to_dict(obj).items():
        nested = dataclasses.is_dataclass(getattr(obj, key))
        for sub, v in (to_flat_dict(getattr(obj, key)).items() if nested else [("", value)]):
            out[f"{key}.{sub}" if sub else key] = v
    return out


def flat_field_owners(cls) -> dict[str, list[str]]:
    """Field name -> the nested groups of ``cls`` that have a field of that name (for short forms)."""
    hints = _hints(cls)
    owners: dict[str, list[str]] = {}
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            for g in dataclasses.fields(hints[f.name]):
                owners.setdefault(g.name, []).append(f.name)
    return owners
