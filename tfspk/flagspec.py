"""absl flags generated from (nested) dataclass fields, so each setting has one default.

A field declares its flag in its metadata (`field(default, "help", rule=Range(1))`);
a class that cannot carry metadata (e.g. `tfspk.model_spec.ModelSpec`, which is saved
as JSON) gets it from an `external` table keyed by the field's path. From the fields:

- `flag_specs(cls)`: one `FlagSpec` per leaf field (name, path, kind, default, help,
  rule), nested dataclass fields recursed into; every leaf is a flag.
- `define_flags(specs, flag_values)`: absl flags of the field's type and default; a
  field's `rule` becomes a validator whose message is `--name must be <rule>`.
- `from_flags(cls, specs, flag_values)` builds the config; `flag_lines(config, specs)`
  writes a `--flagfile` that parses back to an equal config.
- `problems(config, specs)`: every field whose value breaks its rule, as
  `path (--flag) must be <rule>, got <value>` (the Python API's check).
- `to_dict` / `from_dict`: JSON-ready form and back.

Types map to flags as: bool -> DEFINE_bool, int (or `int | None`) -> DEFINE_integer,
float -> DEFINE_float, str -> DEFINE_string (DEFINE_enum with `choices`), tuple[T, ...]
-> DEFINE_list of T.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Callable, Mapping, Sequence

_META_KEY = "tfspk_flag"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A predicate on a field's value and the words that finish "must be ...".

    `allow_none` lets an optional field (`int | None`) keep its None default."""

    predicate: Callable[[Any], bool]
    text: str
    allow_none: bool = False

    def __call__(self, value) -> bool:
        if value is None:
            return self.allow_none
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False


def Range(low=None, high=None, *, low_open=False, high_open=False, finite=False,
          allow_none=False) -> Rule:
    """`low <= value <= high` (either end open or absent), e.g. "in [0, 1)", ">= 1"."""
    def ok(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if finite and not math.isfinite(value):
            return False
        if math.isnan(value):
            return False
        if low is not None and (value <= low if low_open else value < low):
            return False
        return not (high is not None and (value >= high if high_open else value > high))

    if low is not None and high is not None:
        text = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        text = f"{'>' if low_open else '>='} {low}"
    else:
        text = f"{'<' if high_open else '<='} {high}"
    if finite:
        text = f"a finite number {text}"
    if allow_none:
        text = f"unset or {text}"
    return Rule(ok, text, allow_none)


def Each(rule: Rule, what: str, *, count: int | None = None, non_empty: bool = True) -> Rule:
    """Every element of a list field obeys `rule`: "a comma-separated list of <what> >= 1"."""
    def ok(values):
        values = tuple(values)
        if count is not None and len(values) != count:
            return False
        return (bool(values) or not non_empty) and all(rule(v) for v in values)

    amount = f"{count} " if count is not None else "a comma-separated list of "
    return Rule(ok, f"{amount}{what} {rule.text}")


def field(default=dataclasses.MISSING, help: str = "", *, flag: str | None = None,
          rule: Rule | None = None, choices: Sequence[str] | Callable[[], Sequence[str]]
          | None = None, default_factory=dataclasses.MISSING, **kwargs):
    """A dataclass field with its flag: name (default: the field name), help, rule and,
    for strings, the allowed `choices` (a sequence or a function returning one)."""
    metadata = dict(kwargs.pop("metadata", {}))
    metadata[_META_KEY] = FlagInfo(help, flag, rule, choices)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata=metadata, **kwargs)


@dataclasses.dataclass(frozen=True)
class FlagInfo:
    """What a field says about its flag (see `field`)."""

    help: str
    name: str | None = None
    rule: Rule | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """One generated flag: `--name` sets the field at `path` (attribute names from the
    top config). `kind` is bool/int/float/str/enum/list; `element` the list's type."""

    name: str
    path: tuple[str, ...]
    kind: str
    default: Any
    help: str
    required: bool = False
    rule: Rule | None = None
    choices: tuple[str, ...] | None = None
    element: type | None = None

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def to_field(self, value):
        """A parsed flag value as the field holds it (lists -> tuples of `element`)."""
        if self.kind == "list" and value is not None:
            return tuple(self.element(v) for v in value)
        return value

    def to_text(self, value) -> str | None:
        """`--name=value` (or `--name` / `--noname`); None when value is unset (None)."""
        if value is None:
            return None
        if self.kind == "bool":
            return f"--{self.name}" if value else f"--no{self.name}"
        if self.kind == "list":
            return f"--{self.name}=" + ",".join(_scalar_text(v) for v in value)
        return f"--{self.name}={_scalar_text(value)}"


def _scalar_text(value) -> str:
    # repr(float) is the shortest text that parses back to the same float.
    return repr(value) if isinstance(value, float) else str(value)


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _kind(tp, path) -> tuple[str, type | None]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "bool", None
    if tp is int:
        return "int", None
    if tp is float:
        return "float", None
    if tp is str:
        return "str", None
    if origin is tuple:
        element = args[0] if args else str
        if element not in (int, float, str):
            raise TypeError(f"{'.'.join(path)}: list elements must be int, float or str")
        return "list", element
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and type(None) in args:
            return _kind(inner[0], path)
    raise TypeError(f"{'.'.join(path)}: no flag type for {tp!r}")


def _default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def flag_specs(cls, external: Mapping[tuple[str, ...], FlagInfo] | None = None,
               _path: tuple[str, ...] = ()) -> list[FlagSpec]:
    """Every leaf field of `cls` (recursing into dataclass-typed fields) as a FlagSpec.

    A leaf's flag information comes from its metadata or from `external[path]`; a leaf
    with neither is an error, so no setting is left without a flag."""
    external = external or {}
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        path = _path + (f.name,)
        tp = hints[f.name]
        if _is_dataclass_type(tp):
            specs.extend(flag_specs(tp, external, path))
            continue
        info = f.metadata.get(_META_KEY) or external.get(path)
        if info is None:
            raise TypeError(f"{'.'.join(path)}: no flag declared (field metadata or the "
                            "external table)")
        kind, element = _kind(tp, path)
        default = _default_of(f)
        required = default is dataclasses.MISSING
        choices = info.choices() if callable(info.choices) else info.choices
        if choices is not None:
            if kind != "str":
                raise TypeError(f"{'.'.join(path)}: choices need a str field")
            kind = "enum"
        specs.append(FlagSpec(info.name or f.name, path, kind,
                              None if required else default, info.help, required,
                              info.rule, tuple(choices) if choices else None, element))
    names = [s.name for s in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated and not _path:
        raise TypeError(f"flag names used by two fields: {duplicated}")
    return specs


def define_flags(specs: Sequence[FlagSpec], flag_values, module_name: str | None = None):
    """Defines one absl flag per spec on `flag_values`, with the rule as a validator."""
    from absl import flags

    for spec in specs:
        default = spec.default
        kwargs = dict(flag_values=flag_values)
        if module_name:
            kwargs["module_name"] = module_name
        help_text = spec.help
        if spec.rule is not None:
            help_text += f" (must be {spec.rule.text})"
        if spec.kind == "bool":
            flags.DEFINE_bool(spec.name, default, help_text, **kwargs)
        elif spec.kind == "int":
            flags.DEFINE_integer(spec.name, default, help_text, **kwargs)
        elif spec.kind == "float":
            flags.DEFINE_float(spec.name, default, help_text, **kwargs)
        elif spec.kind == "enum":
            flags.DEFINE_enum(spec.name, default, list(spec.choices), help_text, **kwargs)
        elif spec.kind == "list":
            flags.DEFINE_list(spec.name, None if default is None else
                              [_scalar_text(v) for v in default], help_text, **kwargs)
        else:
            flags.DEFINE_string(spec.name, default, help_text, **kwargs)
        if spec.rule is not None:
            flags.register_validator(
                spec.name, _flag_predicate(spec),
                message=f"--{spec.name} must be {spec.rule.text}", flag_values=flag_values)
    required = [spec.name for spec in specs if spec.required]
    if required:
        flags.mark_flags_as_required(required, flag_values=flag_values)


def _flag_predicate(spec: FlagSpec):
    def ok(value):
        if value is None:
            return spec.required or spec.rule.allow_none or spec.default is None
        try:
            return spec.rule(spec.to_field(value))
        except (TypeError, ValueError):
            return False
    return ok


def from_flags(cls, specs: Sequence[FlagSpec], flag_values):
    """The `cls` instance the parsed flags describe."""
    values = {spec.path: spec.to_field(flag_values[spec.name].value) for spec in specs}
    return _build(cls, values, ())


def from_values(cls, specs: Sequence[FlagSpec], values: Mapping[str, Any]):
    """The `cls` instance with the fields of the named flags set (`{"batch_size": 8}`),
    the rest at their defaults; unknown names are an error listing them."""
    by_name = {spec.name: spec for spec in specs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ValueError(f"{cls.__name__}: no flag(s) {unknown}")
    return _build(cls, {by_name[name].path: by_name[name].to_field(value)
                        if by_name[name].kind == "list" and value is not None
                        and not isinstance(value, tuple) else value
                        for name, value in values.items()}, ())


def _build(cls, values: Mapping[tuple[str, ...], Any], path: tuple[str, ...]):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        sub = path + (f.name,)
        if _is_dataclass_type(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], values, sub)
        elif sub in values:
            kwargs[f.name] = values[sub]
    return cls(**kwargs)


def get_path(config, path: Sequence[str]):
    for name in path:
        config = getattr(config, name)
    return config


def flag_lines(config, specs: Sequence[FlagSpec]) -> list[str]:
    """`--flag=value` lines that reproduce `config` when parsed by the same flags."""
    lines = [spec.to_text(get_path(config, spec.path)) for spec in specs]
    return [line for line in lines if line is not None]


def problems(config, specs: Sequence[FlagSpec]) -> list[str]:
    """`path (--flag) must be <rule>, got <value>` for every field breaking its rule or
    outside its choices."""
    found = []
    for spec in specs:
        value = get_path(config, spec.path)
        shown = list(value) if isinstance(value, tuple) else value
        if value is None and spec.required:
            found.append(f"{spec.dotted} (--{spec.name}) is required")
        elif spec.rule is not None and not spec.rule(value):
            found.append(f"{spec.dotted} (--{spec.name}) must be {spec.rule.text}, "
                         f"got {shown!r}")
        elif spec.choices and value not in spec.choices:
            found.append(f"{spec.dotted} (--{spec.name}) must be one of "
                         f"{list(spec.choices)}, got {shown!r}")
    return found


def to_dict(config) -> dict:
    """JSON-ready nested dict (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls, data: Mapping[str, Any]):
    """Inverse of `to_dict`: nested dicts -> dataclasses, lists -> tuples; unknown keys
    are an error naming them."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if _is_dataclass_type(tp) and isinstance(value, Mapping):
            value = from_dict(tp, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)
