"""The server stack a run measures must be the one the lock installs (issue 11).

A figure measured on packages installed by hand (uvloop, httptools, another uvicorn) says
nothing about what a fresh clone or the Docker image serves with, so the run refuses to start
when an installed package's version differs from requirements.lock.
"""

from __future__ import annotations

import re
from importlib import metadata

from packaging.markers import Marker

from landscape_graphql.serving import server_stack

from .measure import ROOT

_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def lock_differences() -> list[str]:
    """Installed packages whose version differs from the lock (absent ones only if unmarked)."""
    text = (ROOT / "requirements.lock").read_text()
    differences = []
    for line in text.splitlines():
        found = _PIN.match(line)
        if not found:
            continue
        name, pinned, marker = found.groups()
        if marker and not Marker(marker).evaluate():
            continue  # pinned for another platform or Python
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            differences.append(f"{name} {pinned} is locked but not installed")
            continue
        if installed != pinned:
            differences.append(f"{name} {installed} installed, {pinned} locked")
    return differences


def describe() -> str:
    loop, http = server_stack()
    parts = [f"uvicorn {metadata.version('uvicorn')}", f"loop {loop}"]
    if loop == "uvloop":
        parts[-1] += f" {metadata.version('uvloop')}"
    parts.append(f"HTTP {http}" + (f" {metadata.version('httptools')}" if http == "httptools" else ""))
    return ", ".join(parts) + " (as requirements.lock installs them)"
