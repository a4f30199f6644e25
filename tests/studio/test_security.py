"""Security headers, HTTPS settings, `check --deploy`, and how refusals are logged."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from r1studio.env import EnvError, env_header

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "r1studio.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DEBUG": "false",
    "SESSION_COOKIE_SECURE": "true",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "studio.example.org",
}


def csp_directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_it_sends_a_content_security_policy_without_inline_scripts(
    researcher_client: Any,
) -> None:
    response = researcher_client.get(reverse("runs:list"))
    directives = csp_directives(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]


def test_it_sends_the_other_security_headers(researcher_client: Any) -> None:
    response = researcher_client.get(reverse("core:dashboard"))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # HTTPS is not switched on in tests


def test_it_redirects_to_https_and_sends_hsts_when_switched_on(client: Any, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    response = client.get("/runs/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/runs/"
    assert client.get("/healthz").status_code in (200, 503)  # load balancers probe over HTTP
    response = client.get("/accounts/login/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


def test_secure_cookies_switch_on_https_redirect_and_a_years_hsts() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_PROXY_SSL_HEADER)"
    )
    result = run_manage(
        "shell",
        "-c",
        code,
        SESSION_COOKIE_SECURE="true",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == (
        "True 31536000 True ('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_it_reads_the_proxy_ssl_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https")
    assert env_header("SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "")
    assert env_header("SECURE_PROXY_SSL_HEADER") is None
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO")
    with pytest.raises(EnvError, match="^SECURE_PROXY_SSL_HEADER: expected HEADER-NAME: VALUE"):
        env_header("SECURE_PROXY_SSL_HEADER")


def test_check_deploy_is_clean_for_a_production_environment() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_warns_for_a_development_environment() -> None:
    result = run_manage("check", "--deploy", SESSION_COOKIE_SECURE="false", DEBUG="true")
    output = result.stdout + result.stderr
    for warning in ("security.W004", "security.W008", "security.W012", "security.W018"):
        assert warning in output


def asgi_get(path: str) -> tuple[int, dict[str, str]]:
    """GET `path` from the ASGI application (what uvicorn serves): status and headers."""
    from asgiref.testing import ApplicationCommunicator

    from r1studio.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }

    async def get() -> dict[str, Any]:
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=10)
        while (await communicator.receive_output(timeout=10)).get("more_body"):
            pass
        await communicator.wait(timeout=10)
        return start

    start = asyncio.run(get())
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers


@pytest.mark.parametrize("path", ["/static/js/runs.js", "/static/vendor/plotly.min.js"])
def test_static_files_are_served_with_nosniff(path: str) -> None:
    status, headers = asgi_get(path)
    assert status == 200
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"].startswith("text/javascript")


@pytest.mark.django_db
def test_a_missing_static_file_is_a_404_with_nosniff() -> None:
    status, headers = asgi_get("/static/js/nothing-here.js")
    assert status == 404
    assert headers["x-content-type-options"] == "nosniff"


def test_a_403_is_logged_as_one_warning_line_without_a_traceback(
    annotator_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = annotator_client.get(reverse("runs:list"))
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    record = records[0]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert record.getMessage() == (
        "Forbidden (Permission denied): /runs/ (This page needs the researcher role.)"
    )
    assert "Traceback" not in caplog.text
    formatted = logging.Formatter().format(record)
    assert "\n" not in formatted
