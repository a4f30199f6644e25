"""The trace browser's filter form (GET parameters)."""

from __future__ import annotations

from typing import Any

from django import forms
from pydantic import ValidationError

from r1studio.traces.filters import SEARCH_HELP, SOURCES, TraceFilters

CORRECT_CHOICES = [("", "any"), ("yes", "correct"), ("no", "incorrect")]
SOURCE_CHOICES = [("", "all"), *SOURCES.items()]


class TraceFilterForm(forms.Form):
    """Filters of `traces_page`; every field is optional and a bad value is simply ignored."""

    run = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Run")
    step_min = forms.IntegerField(required=False, min_value=0, label="Step from")
    step_max = forms.IntegerField(required=False, min_value=0, label="to")
    reward_min = forms.FloatField(required=False, label="Reward from")
    reward_max = forms.FloatField(required=False, label="to")
    correct = forms.ChoiceField(required=False, choices=CORRECT_CHOICES, label="Answer")
    source = forms.ChoiceField(required=False, choices=SOURCE_CHOICES, label="Source")
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Text",
        help_text=SEARCH_HELP,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": 'words, "a phrase", prefix*',
                "title": SEARCH_HELP,
            }
        ),
    )

    def __init__(self, *args: Any, runs: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "all runs")] + [(r.pk, f"#{r.pk} {r.name}") for r in runs]
        selected = self.data.get("run") if self.is_bound else None
        if selected and selected.isdigit() and int(selected) not in {r.pk for r in runs}:
            choices.append((int(selected), f"#{selected}"))  # a run without traces yet
        self.fields["run"].choices = choices

    def filters(self) -> dict[str, Any]:
        """The valid filters as `traces_page` keyword arguments (invalid fields dropped), read
        through `TraceFilters`, the one definition the API uses too."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        values = {name: data.get(name) for name in TraceFilters.model_fields}
        values["correct"] = {"yes": True, "no": False}.get(data.get("correct") or "")
        values["source"] = data.get("source") or None
        out: dict[str, Any] = {}
        for name, value in values.items():
            try:  # one field at a time: a bad value drops that filter only
                out.update(TraceFilters(**{name: value}).selector_kwargs())
            except ValidationError:
                continue
        if data.get("run") is not None:
            out["run_id"] = data["run"]
        return out
