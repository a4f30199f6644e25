"""Forms of the researcher's annotation pages: a new queue, its settings, gold items, review."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from pipeline.rewards.language import LANGUAGE_SCRIPTS
from r1studio.curation.annotation.models import Verdict
from r1studio.curation.annotation.queues import LEASE_SECONDS, MAX_ITEMS, MAX_OVERLAP
from r1studio.curation.models import DatasetVersion

SOURCES = [("version", "a dataset version"), ("traces", "a trace selection")]
_GOLD_LINE = re.compile(r"^\s*#?(\d+)\s*[:,]?\s*(accept|reject|-)?\s*$", re.IGNORECASE)
GOLD_HELP = (
    "One item a line: its number (1 is the first row) and the known verdict, e.g. "
    "'12 accept'. Rows with a gold_verdict column are gold already."
)


def parse_gold(text: str) -> dict[int, str]:
    """`"3 accept\\n7 reject"` → {3: "accept", 7: "reject"}; '-' (or nothing) unmarks.

    >>> parse_gold("3 accept\\n#7: reject\\n9 -")
    {3: 'accept', 7: 'reject', 9: ''}
    """
    out: dict[int, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _GOLD_LINE.match(line)
        if match is None:
            raise forms.ValidationError(f"line {number}: write a number and accept or reject")
        verdict = (match.group(2) or "").lower()
        out[int(match.group(1))] = "" if verdict == "-" else verdict
    return out


class AnnotatorsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.get_username()


class QueueForm(forms.Form):
    """A new queue: where its items come from, the questions, who labels and how often."""

    name = forms.CharField(max_length=200)
    source = forms.ChoiceField(choices=SOURCES, widget=forms.RadioSelect, initial="version")
    version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(),
        required=False,
        help_text="Every row becomes an item (up to the limit).",
    )
    limit = forms.IntegerField(
        min_value=1,
        max_value=MAX_ITEMS,
        initial=1000,
        help_text=f"The first N rows or traces (at most {MAX_ITEMS:,}).",
    )
    guidelines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Markdown. Editing them later publishes a new version; every label records "
        "the version it was made under.",
    )
    ask_verdict = forms.BooleanField(required=False, initial=True, label="Verdict (accept/reject)")
    ask_edit = forms.BooleanField(required=False, initial=True, label="Edit think and answer")
    ask_rating = forms.BooleanField(required=False, initial=True, label="Rating 1–5")
    ask_note = forms.BooleanField(required=False, initial=True, label="Note")
    tags = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Tags annotators may set, separated by commas (e.g. language-mix, verbose).",
    )
    overlap = forms.IntegerField(
        min_value=1,
        max_value=MAX_OVERLAP,
        initial=1,
        help_text="How many annotators label each item (2 or more measures agreement).",
    )
    lease_minutes = forms.IntegerField(
        min_value=LEASE_SECONDS[0] // 60,
        max_value=LEASE_SECONDS[1] // 60,
        initial=30,
        help_text="An item an annotator took goes back to the queue after this long.",
    )
    language = forms.ChoiceField(
        choices=[(code, code) for code in sorted(LANGUAGE_SCRIPTS)],
        initial="en",
        help_text="The language the reasoning should be in (the language-consistency check).",
    )
    annotators = AnnotatorsField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)
    gold = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text=GOLD_HELP
    )

    def __init__(self, *args: Any, annotators: Any, versions: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = annotators
        self.fields["version"].queryset = versions

    def clean_gold(self) -> dict[int, str]:
        gold = parse_gold(self.cleaned_data.get("gold", ""))
        if any(v not in Verdict.values for v in gold.values()):
            raise forms.ValidationError("a gold item needs a verdict: accept or reject")
        return gold

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") == "version" and not data.get("version"):
            self.add_error("version", "Pick the dataset version the items come from.")
        return data

    def questions(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "verdict": data["ask_verdict"],
            "edit": data["ask_edit"],
            "rating": data["ask_rating"],
            "note": data["ask_note"],
            "tags": data.get("tags") or "",
        }


class SettingsForm(forms.Form):
    """Who labels the queue, and how long a lease lasts."""

    annotators = AnnotatorsField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)
    lease_minutes = forms.IntegerField(
        min_value=LEASE_SECONDS[0] // 60, max_value=LEASE_SECONDS[1] // 60
    )

    def __init__(self, *args: Any, annotators: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["annotators"].queryset = annotators


class GuidelinesForm(forms.Form):
    text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 10}), label="Guidelines (Markdown)"
    )


class GoldForm(forms.Form):
    gold = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text=GOLD_HELP)

    def clean_gold(self) -> dict[int, str]:
        return parse_gold(self.cleaned_data["gold"])


class PromoteForm(forms.Form):
    dataset_name = forms.CharField(
        max_length=100, help_text="A new or existing dataset; promotion adds a version."
    )
    readable = forms.BooleanField(
        required=False,
        label="Readable format",
        help_text="The assistant turn as |special_token|reasoning|special_token|summary (the R1 "
        "paper's cold-start format) instead of <think>…</think><answer>…</answer>.",
    )
