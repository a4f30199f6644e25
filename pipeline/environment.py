"""What a stage really ran with: library versions and the code's git commit.

Reported once, in the stage's ``started`` status event (``environment``), so the studio records
the versions of the machine that trained, not of the web server that launched it: a GPU node's
TRL can differ from the laptop's. Versions come from the installed distributions' metadata
(nothing is imported: reading torch's version must not cost torch's import).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "transformers", "trl", "vllm", "datasets", "accelerate")
NOT_INSTALLED = "not installed"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def package_version(name: str) -> str:
    """The installed version of distribution `name`, or "not installed"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """The commit of the checkout the code runs from, with "+dirty" when files changed; "" when
    it is not a git checkout (an installed wheel) or git is missing."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{head}+dirty" if head and dirty else head


def environment() -> dict[str, Any]:
    """`{python, platform, git_commit, packages: {name: version}}` of this process."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "git_commit": git_commit(),
        "packages": {name: package_version(name) for name in PACKAGES},
    }
