"""Recipe, editor and lineage pages: each part keeps its own URL list (recipe_urls,
editor_urls, lineage_urls)."""

from __future__ import annotations

from r1studio.recipes import editor_urls, lineage_urls, recipe_urls

app_name = "recipes"
urlpatterns = [
    *recipe_urls.urlpatterns,
    *editor_urls.urlpatterns,
    *lineage_urls.urlpatterns,
]
