"""`make bench`: every benchmark script in one go, one log, one summary.

Runs each script in ``BENCHES`` in order even when an earlier one misses a target (so a single
run gives every figure), tees their output to ``var/bench/<UTC time>.log``, and ends with a summary:
when and on what machine it ran (CPU count, memory, load average before and after), each
script's exit status, and the share of CPU time the hypervisor gave to other guests while it ran
("steal", from /proc/stat on Linux: on a shared virtual machine this is the neighbours' share,
which slows every figure without showing in the load average). Exits 1 when any script failed
or missed a target.

    .venv/bin/python bench/run_all.py                 # everything (tens of minutes)
    .venv/bin/python bench/run_all.py metrics traces  # only the scripts named
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, arguments): name is the script under bench/ without .py.
BENCHES: list[tuple[str, list[str]]] = [
    ("rewards", []),
    ("recipe", []),
    ("metrics", []),
    ("ingest_http", ["--db", "both"]),
    ("traces", []),
    ("load", ["--db", "both"]),
    ("annotation", []),
    ("curation", []),
]


def _memory_gib() -> float:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 0.0
    return pages / 2**30


def _load() -> str:
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def _cpu_ticks() -> list[int]:
    """The aggregate `cpu` line of /proc/stat (user, nice, system, idle, iowait, irq, softirq,
    steal), or [] where there is none."""
    try:
        with open("/proc/stat") as fh:
            return [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def _steal(before: list[int], after: list[int]) -> str:
    if len(before) < 8 or len(after) < 8:
        return "?"
    total = sum(after) - sum(before)
    return f"{100 * (after[7] - before[7]) / total:.0f}%" if total > 0 else "?"


def main(argv: list[str]) -> int:
    chosen = [bench for bench in BENCHES if not argv or bench[0] in argv]
    unknown = set(argv) - {name for name, _ in BENCHES}
    if unknown:
        print(
            f"unknown bench: {', '.join(sorted(unknown))}; known: "
            f"{', '.join(name for name, _ in BENCHES)}"
        )
        return 2
    started = datetime.now(UTC)
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{started:%Y%m%dT%H%M%SZ}.log"
    machine = (
        f"{platform.node()}: {os.cpu_count()} CPUs, {_memory_gib():.0f} GiB, "
        f"{platform.platform()}, Python {platform.python_version()}"
    )
    load_before = _load()
    results: list[tuple[str, int, float, str]] = []
    ticks_start = _cpu_ticks()
    with log_path.open("w", encoding="utf-8") as log:

        def out(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()
            log.write(text)
            log.flush()

        out(f"make bench, started {started:%Y-%m-%d %H:%M} UTC on {machine}\n")
        out(f"load average before: {load_before}\n")
        for name, args in chosen:
            out(f"\n===== bench/{name}.py {' '.join(args)}\n")
            began, ticks = time.monotonic(), _cpu_ticks()
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                out(line)
            code = proc.wait()
            results.append((name, code, time.monotonic() - began, _steal(ticks, _cpu_ticks())))
        ended = datetime.now(UTC)
        out(f"\n===== summary: {started:%Y-%m-%d %H:%M}–{ended:%H:%M} UTC on {machine}\n")
        out(f"load average before: {load_before}; after: {_load()}\n")
        out(f"hypervisor steal over the run: {_steal(ticks_start, _cpu_ticks())}\n")
        for name, code, seconds, steal in results:
            verdict = "PASS" if code == 0 else f"FAIL (exit {code})"
            out(f"  {verdict:<14} bench/{name}.py  ({seconds:.0f} s, steal {steal})\n")
        out(f"log: {log_path.relative_to(ROOT)}\n")
    return 0 if all(result[1] == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
