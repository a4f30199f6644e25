"""The trace browser's filter form (GET parameters)."""

from __future__ import annotations

from typing import Any

from django import forms

# What `r1studio.traces.search` matches, on SQLite and PostgreSQL alike.
SEARCH_HELP = (
    "Word search in the prompt and completion: every word must occur (case does not matter); "
    'words joined by punctuation or in quotes are a phrase (re-check, "let me check"); '
    "a trailing * matches a prefix (verif*). Not a substring search."
)
CORRECT_CHOICES = [("", "any"), ("yes", "correct"), ("no", "incorrect")]
SOURCE_CHOICES = [
    ("", "all"),
    ("train", "training samples"),
    ("probe", "probe prompts"),
    ("eval", "evaluations"),
]


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
        """The valid filters as `traces_page` keyword arguments (invalid fields dropped)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        out: dict[str, Any] = {}
        for name in ("step_min", "step_max", "reward_min", "reward_max", "source"):
            if data.get(name) not in (None, ""):
                out[name] = data[name]
        if data.get("correct"):
            out["correct"] = data["correct"] == "yes"
        if data.get("q", "").strip():
            out["q"] = data["q"].strip()
        if data.get("run") is not None:
            out["run_id"] = data["run"]
        return out
