"""`manage.py studio [--port N]`: set up and run the whole studio in the foreground (`make run`).

Steps: migrate; sync the role groups; create the demo admin on first start (its password is
printed once); build the toy models and data once (`python -m pipeline toy`); start an embedded
Redis unless REDIS_URL is set; start one Celery worker and uvicorn; print the address; stop
everything on Ctrl+C. A second start finds all of this done and is up in seconds.
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
            launcher.start("web server", web_argv(host=host, port=port), env=env, cwd=cwd)
            launcher.wait_for_http(f"http://127.0.0.1:{port}/healthz")
            self.say(f"\nR1 Studio is running at http://127.0.0.1:{port}\n(Ctrl+C stops it)\n")
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
            self.say(
                "\nCreated the demo admin (the password is shown only now; only its hash is "
                f"stored):\n  username: {created.user.get_username()}\n"
                f"  password: {created.password}\n"
            )
        connections.close_all()  # the children open their own
        if build_toy:
            self._build_toy(data_dir / "toy")

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
