"""Command line: run a stage, validate a config, build the toy assets, list rewards.

    python -m pipeline run CONFIG --run-dir DIR [--resume] [--runs-root ROOT]
    python -m pipeline validate CONFIG [--runs-root ROOT]
    python -m pipeline toy DIR [--size demo|test]
    python -m pipeline rewards

Exit codes of ``run``: 0 finished, 1 failed, 2 invalid config, 130/143 cancelled (SIGINT/SIGTERM;
the stage saves a checkpoint first). ``${runs}`` in a config (recipe files) is replaced by
``--runs-root``, else ``$R1STUDIO_RUNS_ROOT``, else the parent folder of ``--run-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from pipeline.checks import validate_config
from pipeline.config import ConfigError, read_config_file

EXIT_INVALID = 2


def _print_errors(errors: list[dict], stream=sys.stderr) -> None:
    for error in errors:
        print(f"{error['loc'] or '<config>'}: {error['msg']}", file=stream)


def _read(path: str, runs_root: str | None) -> dict:
    try:
        return read_config_file(path, runs_root)
    except FileNotFoundError:
        raise ConfigError([{"loc": "", "msg": f"no such config file: {path}"}]) from None
    except (ValueError, OSError) as exc:  # YAML/JSON syntax errors included
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError([{"loc": "", "msg": f"cannot read {path}: {exc}"}]) from None


def cmd_validate(args: argparse.Namespace) -> int:
    runs_root = args.runs_root or os.environ.get("R1STUDIO_RUNS_ROOT")
    try:
        data = _read(args.config, runs_root)
    except ConfigError as exc:
        _print_errors(exc.errors, sys.stdout)
        return EXIT_INVALID
    errors = validate_config(data)
    if errors:
        _print_errors(errors, sys.stdout)
        return EXIT_INVALID
    print(f"ok: valid {data.get('kind')} config")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.reporting import JsonlReporter, die_with_parent, request_stop, setup_logging

    die_with_parent()
    setup_logging()

    run_dir = Path(args.run_dir or Path(args.config).parent).resolve()
    runs_root = args.runs_root or os.environ.get("R1STUDIO_RUNS_ROOT") or str(run_dir.parent)
    try:
        data = _read(args.config, runs_root)
        errors = validate_config(data)
    except ConfigError as exc:
        errors = exc.errors
    if errors:
        _print_errors(errors)
        if run_dir.is_dir():  # the supervisor made it: say why in the events it reads
            reporter = JsonlReporter(run_dir)
            reporter.status(
                "failed", "invalid config: " + "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
            )
            reporter.close()
        return EXIT_INVALID

    from pipeline.config import config_to_dict, parse_config
    from pipeline.stages import EXIT_INTERRUPTED, EXIT_TERMINATED, run_stage

    config = parse_config(data)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "config.json"
    if Path(args.config).resolve() != config_file:
        config_file.write_text(json.dumps(config_to_dict(config), indent=2))

    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        received.append(signum)
        request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = run_stage(config, run_dir, resume=args.resume, cancel_code=EXIT_TERMINATED)
    if code == EXIT_TERMINATED and received and received[0] == signal.SIGINT:
        code = EXIT_INTERRUPTED
    return code


def cmd_toy(args: argparse.Namespace) -> int:
    from pipeline.toy import build_toy

    build_toy(args.dir, size=args.size)
    return 0


def cmd_rewards(args: argparse.Namespace) -> int:
    from pipeline import rewards

    for name, help_text in rewards.describe().items():
        print(f"{name}\n    {help_text}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one stage")
    p.add_argument("config", help="stage config (YAML or JSON)")
    p.add_argument("--run-dir", help="where events, checkpoints and outputs go")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--runs-root", help="what ${runs} means in recipe configs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a config without running it")
    p.add_argument("config")
    p.add_argument("--runs-root", help="what ${runs} means in recipe configs")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("toy", help="build tiny local models, data and configs")
    p.add_argument("dir")
    p.add_argument("--size", choices=["demo", "test"], default="demo")
    p.set_defaults(func=cmd_toy)

    p = sub.add_parser("rewards", help="list the reward functions")
    p.set_defaults(func=cmd_rewards)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
