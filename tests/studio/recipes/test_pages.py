"""The recipe list and a recipe's page: new from a preset, the stage table, actions by owner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from r1studio.recipes.models import Recipe

pytestmark = pytest.mark.django_db


@pytest.fixture
def toy_in_data_dir(settings: Any, tmp_path: Path, toy_dir: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "toy").symlink_to(toy_dir)
    settings.R1STUDIO_DATA_DIR = data
    return data


def test_the_list_offers_the_presets_and_an_empty_state(researcher_client: Any) -> None:
    page = researcher_client.get(reverse("recipes:list"))
    assert page.status_code == 200
    assert b"No recipe yet" in page.content
    assert b"DeepSeek-R1" in page.content
    assert b'href="/recipes/"' in page.content  # the nav link


def test_a_draft_from_the_toy_preset_shows_its_stages(
    researcher_client: Any, researcher: Any, toy_in_data_dir: Path
) -> None:
    made = researcher_client.post(reverse("recipes:new"), {"preset": "toy"})
    recipe = Recipe.objects.get(owner=researcher)
    assert made.status_code == 302 and made["Location"] == reverse(
        "recipes:detail", args=[recipe.pk]
    )
    page = researcher_client.get(made["Location"])
    assert page.status_code == 200
    for key in ("01-r1-zero", "02-cold-start-gate", "09-evaluate"):
        assert key.encode() in page.content
    assert b'data-action="launch"' in page.content


def test_another_researcher_sees_a_launched_recipe_but_cannot_cancel_it(
    client: Any, make_user: Any, researcher: Any
) -> None:
    recipe = Recipe.objects.create(name="theirs", owner=researcher, status="running")
    other = make_user("researcher")
    client.force_login(other)
    assert client.get(reverse("recipes:detail", args=[recipe.pk])).status_code == 200
    assert client.post(reverse("recipes:cancel", args=[recipe.pk])).status_code == 403
    recipe.refresh_from_db()
    assert recipe.status == "running"


def test_a_draft_is_hidden_from_other_researchers(
    client: Any, make_user: Any, researcher: Any
) -> None:
    recipe = Recipe.objects.create(name="mine", owner=researcher)
    client.force_login(make_user("researcher"))
    assert client.get(reverse("recipes:detail", args=[recipe.pk])).status_code == 404
