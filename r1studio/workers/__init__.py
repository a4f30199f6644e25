"""Celery worker heartbeats and the GPU inventory."""
