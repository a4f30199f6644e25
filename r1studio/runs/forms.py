"""The stage config form, generated from the pydantic models of `pipeline.config`.

`ConfigForm(kind, config)` walks the stage model's fields: nested sections become fieldsets,
`Literal` fields selects, booleans checkboxes (optional booleans a three-way select: auto, on,
off), numbers number inputs with the model's bounds, lists of sections (rewards, verifiers,
benchmarks) editable rows, dicts JSON text, lists of strings one item a line. Help text and
defaults come from the fields; fields marked `advanced` fold into a `<details>`. Input names
are the config's dotted paths (`trainer.num_generations`, `rewards.0.weight`), which is also how
`pipeline.config` names the field of an error, so every error lands next to its input.

`ConfigForm.from_post(kind, post)` reads the inputs back into a config dict; the YAML view of
the same config posts `config_yaml` instead (`config_from_yaml`). Either way the server parses,
validates (`services.config_parse`) and re-renders both views from the one config.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from pipeline import safeyaml
from r1studio.runs.services import RunConfigError, config_parse

MODEL_FIELDS = ("model.path",)
DATASET_FIELDS = ("data.source", "eval.benchmark")


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


def _field(path: str, name: str, info: Any) -> Field | None:
    annotation, optional = _unwrap(info.annotation)
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    spec = Field(
        name=path,
        label=_label(name),
        widget="text",
        help=info.description or "",
        default=_default(info),
        advanced=bool(extra.get("advanced")),
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
        long_text = name in ("system_prompt", "template") or "prompt" in name
        spec.widget = "textarea" if long_text else "text"
    elif origin is dict or annotation is dict:
        spec.widget = "json"
    elif origin is list and typing.get_args(annotation) == (str,):
        spec.widget = "lines"
    else:
        return None
    if path.endswith(MODEL_FIELDS):
        spec.datalist = "picker-models"
    elif path.endswith(DATASET_FIELDS):
        spec.datalist = "picker-datasets"
    return spec


def _section(model: type[BaseModel], path: str, label: str, help_text: str) -> Section:
    section = Section(name=path, label=label, help=help_text)
    for name, info in model.model_fields.items():
        sub = f"{path}.{name}" if path else name
        if name == "kind" and not path:
            continue  # fixed by the stage; changing it means another form
        annotation, _ = _unwrap(info.annotation)
        if _is_model(annotation):
            section.sections.append(_section(annotation, sub, _label(name), info.description or ""))
            continue
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is list and args and _is_model(args[0]):
            columns = [
                spec
                for col, col_info in args[0].model_fields.items()
                if (spec := _field(col, col, col_info)) is not None
            ]
            for column in columns:
                is_reward = column.name == "name" and args[0].__name__ == "RewardSpec"
                if is_reward or column.name == "grader":
                    column.datalist = "picker-rewards"
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            section.rows.append(
                Rows(sub, _label(name), info.description or "", columns, advanced=bool(extra))
            )
            continue
        spec = _field(sub, name, info)
        if spec is not None:
            section.fields.append(spec)
    return section


def _get(config: Any, path: str) -> tuple[bool, Any]:
    node = config
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _set(config: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _read(spec: Field, raw: str | None, errors: list[dict]) -> Any:
    """One input's posted text → the config value; a bad value adds an error for its loc."""
    text = (raw or "").strip()
    if spec.widget == "checkbox":
        return raw is not None and raw not in ("", "off", "false", "0")
    if spec.widget == "tristate":
        return {"": None, "true": True, "false": False}.get(text)
    if spec.widget == "number":
        if not text:
            if spec.optional:
                return None
            errors.append({"loc": spec.name, "msg": "a number is required"})
            return spec.default
        try:
            value = float(text)
            if spec.number == "int":
                if not value.is_integer():
                    raise ValueError
                return int(value)
            if spec.number == "steps" and value.is_integer():
                return int(value)  # `5`, not `5.0`, in the form and the stored config
            return value
        except ValueError:
            kind = "a whole number" if spec.number == "int" else "a number"
            errors.append({"loc": spec.name, "msg": f"{kind} is required, got {text!r}"})
            return spec.default
    if spec.widget == "json":
        if not text:
            return {}
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            errors.append({"loc": spec.name, "msg": f"not valid JSON: {exc}"})
            return {}
        if not isinstance(value, dict):
            errors.append({"loc": spec.name, "msg": 'a JSON object is required, e.g. {"k": 1}'})
            return {}
        return value
    if spec.widget == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if spec.optional and not text:
        return None
    return raw if spec.widget == "textarea" else text


class ConfigForm:
    """The generated form of one stage kind, bound to a config (and its errors)."""

    def __init__(self, kind: str, config: dict | None = None):
        from pipeline.config import STAGE_MODELS

        if kind not in STAGE_MODELS:
            raise ValueError(f"unknown stage kind {kind!r}")
        self.kind = kind
        self.model = STAGE_MODELS[kind]
        self.config = config if config is not None else self.model().model_dump(mode="json")
        self.errors: list[dict[str, str]] = []
        self.parsed: Any = None  # the config as `validate()` parsed it, for the services
        self.non_field_errors: list[str] = []
        self.raw_yaml: str | None = None  # posted YAML that did not parse, shown as typed
        self.root = _section(self.model, "", "", self.model.__doc__ or "")
        self._fill(self.root)

    # -- binding ----------------------------------------------------------------------------
    def _fill(self, section: Section) -> None:
        for spec in section.fields:
            found, value = _get(self.config, spec.name)
            spec.value = value if found else spec.default
        for rows in section.rows:
            found, items = _get(self.config, rows.name)
            items = items if found and isinstance(items, list) else []
            rows.rows = [self._row(rows, i, item) for i, item in enumerate(items)]
            rows.blank = self.blank_row(rows)
        for sub in section.sections:
            self._fill(sub)

    def _row(self, rows: Rows, index: int, item: Any) -> list[Field]:
        cells = []
        for column in rows.columns:
            cell = Field(**{**column.__dict__, "errors": [], "choices": list(column.choices)})
            cell.name = f"{rows.name}.{index}.{column.name}"
            cell.value = item.get(column.name, column.default) if isinstance(item, dict) else None
            cells.append(cell)
        return cells

    def blank_row(self, rows: Rows) -> list[Field]:
        """An empty row to add (a row whose first column stays empty is ignored)."""
        cells = self._row(rows, len(rows.rows), {})
        cells[0].value = ""
        return cells

    @classmethod
    def from_post(cls, kind: str, post: Any) -> ConfigForm:
        """Read the posted inputs into a config; conversion errors are kept for `validate`."""
        form = cls(kind)
        errors: list[dict[str, str]] = []
        config: dict[str, Any] = {"kind": kind}
        form._read_section(form.root, post, config, errors)
        form.config = config
        form._fill(form.root)
        form._attach(errors)
        form.errors = errors
        return form

    def _read_section(self, section: Section, post: Any, config: dict, errors: list) -> None:
        for spec in section.fields:
            _set(config, spec.name, _read(spec, post.get(spec.name), errors))
        for rows in section.rows:
            indices = sorted(
                {
                    int(key.split(".")[-2])
                    for key in post
                    if key.startswith(rows.name + ".") and key.split(".")[-2].isdigit()
                }
            )
            items = []
            first = rows.columns[0].name
            for i in indices:
                if not (post.get(f"{rows.name}.{i}.{first}") or "").strip():
                    continue  # the blank row
                item = {}
                for column in rows.columns:
                    cell = Field(
                        **{**column.__dict__, "name": f"{rows.name}.{len(items)}.{column.name}"}
                    )
                    item[column.name] = _read(
                        cell, post.get(f"{rows.name}.{i}.{column.name}"), errors
                    )
                items.append(item)
            _set(config, rows.name, items)
        for sub in section.sections:
            self._read_section(sub, post, config, errors)

    # -- validation -------------------------------------------------------------------------
    def validate(self, *, machine: bool = False) -> bool:
        """Parse the config once (types, cross-field rules, allowed paths; with `machine`, the
        files too: the explicit Check); errors land at their inputs, and `parsed` holds the
        config for the services, which do not parse it again."""
        self.parsed = None
        if not self.errors:
            try:
                self.parsed = config_parse(self.config, machine=machine)
            except RunConfigError as exc:
                self.errors = exc.config_errors
        self._attach(self.errors)
        return not self.errors

    def set_errors(self, errors: list[dict[str, str]]) -> None:
        """Show `[{"loc", "msg"}]` errors (e.g. from a service) at their inputs."""
        self.errors = list(errors)
        self._attach(self.errors)

    def _attach(self, errors: list[dict[str, str]]) -> None:
        targets: dict[str, list[str]] = {}

        def collect(section: Section) -> None:
            targets[section.name] = section.errors
            for spec in section.fields:
                targets[spec.name] = spec.errors
            for rows in section.rows:
                targets[rows.name] = rows.errors
                for row in rows.rows:
                    for cell in row:
                        targets[cell.name] = cell.errors
            for sub in section.sections:
                collect(sub)

        collect(self.root)
        for holder in targets.values():
            holder.clear()
        self.non_field_errors = []
        for error in errors:
            loc = error.get("loc") or ""
            while loc and loc not in targets:
                loc = loc.rpartition(".")[0]  # nearest enclosing input or section
            if loc:
                targets[loc].append(error["msg"])
            else:
                where = error.get("loc")
                self.non_field_errors.append(f"{where}: {error['msg']}" if where else error["msg"])

    def fields_by_name(self) -> dict[str, Field]:
        """Every input of the form (row cells included) by its dotted name."""
        found: dict[str, Field] = {}

        def walk(section: Section) -> None:
            found.update((spec.name, spec) for spec in section.fields)
            for rows in section.rows:
                found.update((cell.name, cell) for row in rows.rows for cell in row)
            for sub in section.sections:
                walk(sub)

        walk(self.root)
        return found

    @property
    def error_summary(self) -> list[dict[str, str]]:
        """The errors for the summary atop the form: `{loc, msg, anchor}`, where `anchor` is
        the id of the input (or fieldset) the error is shown at, "" when it has none."""
        anchors = {name: spec.input_id for name, spec in self.fields_by_name().items()}

        def walk(section: Section) -> None:
            anchors[section.name] = "cfg-section-" + (section.name or "stage")
            for rows in section.rows:
                anchors[rows.name] = rows.anchor
            for sub in section.sections:
                walk(sub)

        walk(self.root)
        summary = []
        for error in self.errors:
            loc = where = error.get("loc") or ""
            while where and where not in anchors:
                where = where.rpartition(".")[0]
            anchor = anchors.get(where, "") if where else ""
            summary.append({"loc": loc, "msg": error["msg"], "anchor": anchor})
        return summary

    @property
    def description(self) -> str:
        """The stage model's docstring, one line."""
        return " ".join((self.model.__doc__ or "").split())

    @property
    def yaml(self) -> str:
        return self.raw_yaml if self.raw_yaml is not None else config_to_yaml(self.config)


def config_to_yaml(config: dict) -> str:
    return safeyaml.dump(config)


def config_from_yaml(text: str) -> tuple[dict | None, list[dict[str, str]]]:
    """Parse the YAML view; (config, []) or (None, [error])."""
    try:
        data = safeyaml.load(text or "")
    except safeyaml.YamlError as exc:
        return None, [{"loc": "", "msg": str(exc)}]
    if not isinstance(data, dict):
        return None, [{"loc": "", "msg": "YAML: the config must be a mapping of fields"}]
    return data, []
