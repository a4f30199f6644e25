"""The stage config form, generated from the pydantic models of `pipeline.config`.

`schema` reads a stage model into `Section`s of `Field`s and `Rows` (widgets, pickers and folding
from the hints each field declares), `post` reads a POST back into a config dict, and `form`
holds `ConfigForm`, which binds the two to a config and places its errors, plus the YAML view.
"""

from __future__ import annotations

from r1studio.runs.forms.form import ConfigForm, config_from_yaml, config_to_yaml
from r1studio.runs.forms.schema import Field, Rows, Section, section_from_model

__all__ = [
    "ConfigForm",
    "Field",
    "Rows",
    "Section",
    "config_from_yaml",
    "config_to_yaml",
    "section_from_model",
]
