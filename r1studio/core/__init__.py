"""Sign-in, roles, the dashboard, health checks and the `studio` launcher."""
