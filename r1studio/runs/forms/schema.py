"""The form's shape, read from a pydantic stage model: `Section`s of `Field`s and `Rows`.

`section_from_model` walks the model's fields: nested sections become fieldsets, `Literal`
fields selects, booleans checkboxes (optional booleans a three-way select: auto, on, off),
numbers number inputs with the model's bounds, lists of sections (rewards, verifiers,
benchmarks) editable rows, dicts JSON text, lists of strings one item a line. Help text and
defaults come from the fields, the rest from the hints each field declares in
`json_schema_extra` (`pipeline.config_sections._f`): `advanced` folds it into a `<details>`,
`widget` overrides the type's widget (a text field shown as a textarea), `picker` names the
suggestions offered (`models`, `datasets`, `rewards`: the `picker-<name>` datalist), `hidden`
leaves it out of the form. No field is special-cased here by its name.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel


@dataclass
class Field:
    """One input: `name` is the config's dotted path."""

    name: str
    label: str
    widget: str  # number | text | textarea | checkbox | select | tristate | json | lines
    help: str = ""
    default: Any = None
    choices: list[str] = field(default_factory=list)
    advanced: bool = False
    optional: bool = False
    number: str = "float"  # int | float | steps (a whole number or a fraction)
    minimum: float | None = None
    maximum: float | None = None
    value: Any = None
    errors: list[str] = field(default_factory=list)
    datalist: str = ""
    source: Any = None  # selectors.RunInput: the earlier run this path comes from

    @property
    def input_id(self) -> str:
        return "cfg-" + self.name.replace(".", "-")

    @property
    def display(self) -> str:
        """The value as the input shows it."""
        if self.widget == "json":
            return json.dumps(self.value or {}, indent=None) if self.value else ""
        if self.widget == "lines":
            return "\n".join(str(v) for v in self.value or [])
        if self.widget == "tristate":
            return "" if self.value is None else ("true" if self.value else "false")
        if self.value is None:
            return ""
        if isinstance(self.value, float) and self.number == "float":
            return repr(self.value)
        return str(self.value)

    @property
    def step(self) -> str:
        return "1" if self.number == "int" else "any"


@dataclass
class Rows:
    """A list of sub-configs edited as table rows (rewards, verifiers, benchmarks)."""

    name: str
    label: str
    help: str
    columns: list[Field]
    rows: list[list[Field]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    advanced: bool = False
    blank: list[Field] = field(default_factory=list)

    @property
    def next_index(self) -> int:
        return len(self.rows)

    @property
    def anchor(self) -> str:
        return "cfg-rows-" + self.name.replace(".", "-")


@dataclass
class Section:
    """A fieldset: the stage itself (name "") or a nested section like `trainer`."""

    name: str
    label: str
    help: str
    fields: list[Field] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    rows: list[Rows] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def basic_fields(self) -> list[Field]:
        return [f for f in self.fields if not f.advanced]

    @property
    def advanced_fields(self) -> list[Field]:
        return [f for f in self.fields if f.advanced]

    @property
    def advanced_open(self) -> bool:
        """Unfold the advanced fields when one of them has an error or a non-default value."""
        return any(f.errors or f.value != f.default for f in self.advanced_fields)


def section_from_model(
    model: type[BaseModel], path: str = "", label: str = "", help_text: str = ""
) -> Section:
    """The fieldset of `model` at the dotted `path` ("" for the stage itself)."""
    section = Section(name=path, label=label, help=help_text)
    for name, info in model.model_fields.items():
        sub = f"{path}.{name}" if path else name
        hints = _hints(info)
        if hints.get("hidden"):
            continue
        annotation, _ = _unwrap(info.annotation)
        if _is_model(annotation):
            section.sections.append(
                section_from_model(annotation, sub, _label(name), info.description or "")
            )
            continue
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is list and args and _is_model(args[0]):
            columns = [
                spec
                for col, col_info in args[0].model_fields.items()
                if (spec := _field(col, col, col_info)) is not None
            ]
            section.rows.append(
                Rows(
                    sub,
                    _label(name),
                    info.description or "",
                    columns,
                    advanced=bool(hints.get("advanced")),
                )
            )
            continue
        spec = _field(sub, name, info)
        if spec is not None:
            section.fields.append(spec)
    return section


def _field(path: str, name: str, info: Any) -> Field | None:
    """The input of one field, or None for a hidden field or a type the form cannot edit."""
    hints = _hints(info)
    if hints.get("hidden"):
        return None
    annotation, optional = _unwrap(info.annotation)
    spec = Field(
        name=path,
        label=_label(name),
        widget="text",
        help=info.description or "",
        default=_default(info),
        advanced=bool(hints.get("advanced")),
        optional=optional,
    )
    origin = typing.get_origin(annotation)
    if origin is Literal:
        spec.widget, spec.choices = "select", [str(a) for a in typing.get_args(annotation)]
    elif annotation is bool:
        spec.widget = "tristate" if optional else "checkbox"
    elif annotation in (int, float, int | float):
        spec.widget = "number"
        spec.number = "steps" if annotation == int | float else annotation.__name__
        spec.minimum, spec.maximum = _bounds(info)
    elif annotation is str:
        spec.widget = "text"
    elif origin is dict or annotation is dict:
        spec.widget = "json"
    elif origin is list and typing.get_args(annotation) == (str,):
        spec.widget = "lines"
    else:
        return None
    if hints.get("widget"):
        spec.widget = hints["widget"]
    if hints.get("picker"):
        spec.datalist = "picker-" + hints["picker"]
    return spec


def _hints(info: Any) -> dict[str, Any]:
    """The form hints a field declares in `json_schema_extra`."""
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner annotation, optional) of `X | None`; `int | float` stays a union."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            return args[0], True
        if set(args) == {int, float}:
            return int | float, optional
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _bounds(info: Any) -> tuple[float | None, float | None]:
    low = high = None
    for meta in info.metadata:
        for attr in ("ge", "gt"):
            if getattr(meta, attr, None) is not None:
                low = getattr(meta, attr)
        for attr in ("le", "lt"):
            if getattr(meta, attr, None) is not None:
                high = getattr(meta, attr)
    return low, high


def _default(info: Any) -> Any:
    if info.default_factory is not None:
        return info.default_factory()
    return info.default
