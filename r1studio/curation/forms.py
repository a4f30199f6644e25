"""Forms of the dataset pages: a new dataset, the rows table's filters, a diff, traces to a
dataset. They parse input only; the rules live in services and selectors."""

from __future__ import annotations

from typing import Any

from django import forms

from r1studio.curation.models import DatasetKind
from r1studio.curation.services import NAME_CHARS

NAME_HELP = "Letters, digits, '-', '_' or '.'; configs name a version dataset:NAME@N."
SEARCH_HELP = (
    "Case-insensitive text in the problem, think or answer. It reads the text itself: seconds "
    "on a large version (the matches are then kept for ten minutes)."
)


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=100, help_text=NAME_HELP)
    kind = forms.ChoiceField(choices=DatasetKind.choices, initial=DatasetKind.OTHER)
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if any(c not in NAME_CHARS for c in name.lower()):
            raise forms.ValidationError(NAME_HELP)
        return name


class RowFilterForm(forms.Form):
    """The rows table's filters (GET): a text search, a length range, and a menu for each
    column with few values (`choices`: {column: [[value, rows], ...]})."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Text",
        help_text=SEARCH_HELP,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "contains…"}),
    )
    min_length = forms.IntegerField(required=False, min_value=0, label="Length from")
    max_length = forms.IntegerField(required=False, min_value=0, label="to")

    def __init__(
        self, *args: Any, choices: dict[str, list[list[Any]]], length_column: str | None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.columns = list(choices)
        for name, values in choices.items():
            options = [("", "any")] + [
                (_text(v), f"{_text(v)} ({n:,})") for v, n in values if v is not None
            ]
            self.fields[f"col_{name}"] = forms.ChoiceField(
                required=False, choices=options, label=name
            )
        if length_column:
            self.fields["min_length"].help_text = f"characters of {length_column}"
        else:
            del self.fields["min_length"], self.fields["max_length"]

    def filters(self) -> dict[str, Any]:
        """{column: value, min_length, max_length} for `version_rows` (bad fields dropped)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        out: dict[str, Any] = {}
        for name in self.columns:
            if data.get(f"col_{name}") not in (None, ""):
                out[name] = data[f"col_{name}"]
        for name in ("min_length", "max_length"):
            if data.get(name) is not None:
                out[name] = data[name]
        return out

    def search(self) -> str:
        return (getattr(self, "cleaned_data", {}).get("q") or "").strip()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class DiffForm(forms.Form):
    old = forms.TypedChoiceField(coerce=int, label="From version")
    new = forms.TypedChoiceField(coerce=int, label="to version")

    def __init__(self, *args: Any, numbers: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = [(n, f"v{n}") for n in numbers]
        self.fields["old"].choices = options
        self.fields["new"].choices = options


class TracesToDatasetForm(forms.Form):
    """What the trace browser posts (its filters travel in the query string)."""

    dataset = forms.CharField(max_length=100, label="Dataset", help_text=NAME_HELP)
    kind = forms.ChoiceField(
        choices=DatasetKind.choices,
        initial=DatasetKind.COLD_START,
        required=False,
        help_text="for a new dataset",
    )
    append = forms.BooleanField(
        required=False,
        label="after the latest version's rows",
        help_text="Unticked, the version holds only these traces.",
    )
