"""`manage.py studio [--port N]`: set up and run the whole studio in the foreground (`make run`).

Steps: migrate; sync the role groups; create the demo admin on first start (its password goes
into R1STUDIO_ADMIN_PASSWORD_FILE, readable by the owner only); build the toy models and data
once (`python -m pipeline toy`); start an embedded Redis unless REDIS_URL is set; start one
Celery worker and uvicorn; once the server answers, print the address, the admin user and where
its password is, last, where it is not lost among start-up output; stop everything on Ctrl+C.
A second start finds all of this done and is up in seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from r1studio.core.embedded_redis import EmbeddedRedisError, start_embedded_redis
from r1studio.core.launcher import (
    Launcher,
    StopRequested,
    child_env,
    die_with_parent,
    ray_worker_argv,
    web_argv,
    worker_argv,
)
from r1studio.core.services import demo_admin_ensure, roles_sync
from r1studio.env import env_bool


class Command(BaseCommand):
    help = (
        "Start R1 Studio: database, roles, demo admin, Redis, a Celery worker and the web server."
    )
    requires_system_checks: list = []  # checked after migrate, by the children

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on.")
        parser.add_argument(
            "--no-toy",
            action="store_true",
            default=env_bool("R1STUDIO_SKIP_TOY", False),
            help="Do not build the toy models and data (also R1STUDIO_SKIP_TOY=1).",
        )
        parser.add_argument(
            "--grace", type=float, default=10.0, help="Seconds children get to stop."
        )

    def say(self, message: str) -> None:
        print(message, flush=True)

    def handle(self, *args: Any, **options: Any) -> None:
        port, host = options["port"], options["host"]
        self._check_port_free(host, port)
        launcher = Launcher(
            grace=options["grace"],
            say=self.say,
            on_redis_restart=lambda redis: self._requeue_runs(redis.url),
        )
        launcher.install_signal_handlers()
        exit_code = 0
        try:
            self._prepare(build_toy=not options["no_toy"])
            extra_env = self._start_redis(launcher)
            env = child_env(extra_env)
            cwd = str(settings.BASE_DIR)
            launcher.start("celery worker", worker_argv(), env=env, cwd=cwd)
            if settings.RAY_ADDRESS:  # runs on a Ray cluster are watched from their own queue
                launcher.start("ray watcher", ray_worker_argv(), env=env, cwd=cwd)
            launcher.start("web server", web_argv(host=host, port=port), env=env, cwd=cwd)
            launcher.wait_for_http(f"http://127.0.0.1:{port}/healthz")
            self.say(self._banner(port))
            dead = launcher.watch()
            self.say(
                f"{dead.name} exited with status {dead.process.returncode} and keeps crashing; "
                "stopping the studio"
            )
            exit_code = 1
        except StopRequested as stop:
            self.say(f"\n{stop.args[0]} received; stopping the studio")
        except (RuntimeError, EmbeddedRedisError) as error:
            self.say(f"error: {error}")
            exit_code = 1
        finally:
            launcher.stop_all()
        self.say("Stopped." if exit_code == 0 else "Stopped after an error.")
        sys.exit(exit_code)

    # --- steps -------------------------------------------------------------------------------
    def _check_port_free(self, host: str, port: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                raise CommandError(
                    f"port {port} on {host} is already in use; pick another, e.g. "
                    f"`make run PORT={port + 1}`"
                ) from None

    def _prepare(self, *, build_toy: bool) -> None:
        data_dir = Path(settings.R1STUDIO_DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        roles_sync()
        created = demo_admin_ensure()
        if created is not None:
            write_password_file(
                Path(settings.R1STUDIO_ADMIN_PASSWORD_FILE),
                created.user.get_username(),
                created.password,
            )
            self.say(f"Created the demo admin {created.user.get_username()!r}.")
        connections.close_all()  # the children open their own
        if build_toy:
            self._build_toy(data_dir / "toy")
            # The toy recipe, a draft launchable with one click (r1studio.recipes; by name, so
            # core does not import the app above it).
            call_command("recipes_demo")
            connections.close_all()

    def _banner(self, port: int) -> str:
        path = Path(settings.R1STUDIO_ADMIN_PASSWORD_FILE)
        username = password_file_username(path)
        if username:
            sign_in = (
                f"  Sign in as:  {username}\n"
                f"  Password:    in {path} (readable by you only; once you have changed it\n"
                "               on the Site admin page, delete the file)\n"
            )
        else:
            sign_in = "  Sign in with the admin account made on the first start.\n"
        line = "-" * 72
        return (
            f"\n{line}\n  R1 Studio is running at http://127.0.0.1:{port}\n{sign_in}"
            f"  Ctrl+C stops it.\n{line}\n"
        )

    def _build_toy(self, toy_dir: Path) -> None:
        if toy_dir.is_dir():
            return
        if not (Path(settings.BASE_DIR) / "pipeline" / "__main__.py").is_file():
            self.say("Skipping the demo models and data: the pipeline package has no CLI yet.")
            return
        self.say(f"Building the demo models and data into {toy_dir} (first start only)...")
        argv = [sys.executable, "-m", "pipeline", "toy", str(toy_dir), "--size", "demo"]
        try:
            result = subprocess.run(argv, cwd=settings.BASE_DIR, preexec_fn=die_with_parent)
        except BaseException:
            shutil.rmtree(toy_dir, ignore_errors=True)  # a half-built dir would never be retried
            raise
        if result.returncode != 0:
            shutil.rmtree(toy_dir, ignore_errors=True)
            self.say(
                f"warning: building the demo assets failed (exit {result.returncode}); "
                "the studio starts without them and tries again next time."
            )

    def _start_redis(self, launcher: Launcher) -> dict[str, str]:
        if os.environ.get("REDIS_URL", "").strip():
            self.say("Using the Redis at REDIS_URL.")
            return {}
        launcher.redis = start_embedded_redis(preexec_fn=die_with_parent, stdout=subprocess.DEVNULL)
        self.say(f"Started the embedded Redis at {launcher.redis.safe_url}")
        self._requeue_runs(launcher.redis.url)
        return {"REDIS_URL": launcher.redis.url}

    def _requeue_runs(self, broker_url: str) -> None:
        # A fresh embedded Redis holds no messages: runs queued before the last stop would wait
        # forever, so send them again.
        from r1studio.celery import app
        from r1studio.runs.services import runs_requeue

        app.conf.broker_url = broker_url
        try:
            count = runs_requeue()
        except Exception as error:  # never the end of the studio: the next start requeues too
            self.say(f"warning: could not queue again the queued runs: {error}")
            return
        finally:
            connections.close_all()
        if count:
            self.say(f"Queued again {count} run(s) left queued before Redis (re)started.")


def write_password_file(path: Path, username: str, password: str) -> None:
    """`username: ...` and `password: ...` lines in `path`, readable and writable by the owner
    only (mode 0600, also when the file was already there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(f"username: {username}\npassword: {password}\n")


def password_file_username(path: Path) -> str:
    """The username written in the password file, or "" when there is no readable file."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "username":
            return value.strip()
    return ""
