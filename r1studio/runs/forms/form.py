"""`ConfigForm`: the generated form of one stage kind, bound to a config and its errors.

Input names are the config's dotted paths (`trainer.num_generations`, `rewards.0.weight`), which
is also how `pipeline.config` names the field of an error, so every error lands next to its
input (or the nearest enclosing rows or fieldset; the rest go atop the form).

`ConfigForm.from_post(kind, post)` reads the inputs back into a config dict; the YAML view of
the same config posts `config_yaml` instead (`config_from_yaml`). Either way the server parses,
validates (`services.config_parse`) and re-renders both views from the one config.
"""

from __future__ import annotations

from typing import Any

from pipeline import safeyaml
from r1studio.runs.forms.post import config_get, read_section
from r1studio.runs.forms.schema import Field, Rows, Section, section_from_model
from r1studio.runs.services import RunConfigError, config_parse


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
        self.root = section_from_model(self.model, "", "", self.model.__doc__ or "")
        self._fill(self.root)

    # -- binding ----------------------------------------------------------------------------
    def _fill(self, section: Section) -> None:
        for spec in section.fields:
            found, value = config_get(self.config, spec.name)
            spec.value = value if found else spec.default
        for rows in section.rows:
            found, items = config_get(self.config, rows.name)
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
        read_section(form.root, post, config, errors)
        form.config = config
        form._fill(form.root)
        form._attach(errors)
        form.errors = errors
        return form

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

    # -- error placement --------------------------------------------------------------------
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

    # -- display ----------------------------------------------------------------------------
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
