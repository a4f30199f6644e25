"""Reading the form's posted inputs back into a config dict, and a config's values by path.

Input names are the config's dotted paths (`trainer.num_generations`, `rewards.0.weight`). A value
that cannot be converted (text in a number input, JSON that does not parse) becomes an error
`{"loc": path, "msg"}` for `ConfigForm.validate`, with the field's default in its place.
"""

from __future__ import annotations

import json
from typing import Any

from r1studio.runs.forms.schema import Field, Section


def config_get(config: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at the dotted `path` of a config; list items by their index."""
    node = config
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def config_set(config: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def read_section(section: Section, post: Any, config: dict, errors: list) -> None:
    """Read the section's inputs (nested sections and rows included) from `post` into `config`."""
    for spec in section.fields:
        config_set(config, spec.name, read_value(spec, post.get(spec.name), errors))
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
                item[column.name] = read_value(
                    cell, post.get(f"{rows.name}.{i}.{column.name}"), errors
                )
            items.append(item)
        config_set(config, rows.name, items)
    for sub in section.sections:
        read_section(sub, post, config, errors)


def read_value(spec: Field, raw: str | None, errors: list[dict]) -> Any:
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
