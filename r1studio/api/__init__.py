"""The JSON API (django-ninja) and the per-user API tokens that authenticate it."""
