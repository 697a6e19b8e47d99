"""The optional dependencies, each a pip extra, refused at use with the command that installs it.

`pip install landscape-graphql` reads SQLite Landscapes with bearer tokens from a file; the rest
is opt-in: `[postgres]` (asyncpg), `[oidc]` (PyJWT with its crypto backend), `[sqlcipher]`
(sqlcipher3), `[otel]` (OpenTelemetry), or `[all]` for the first three (the container image and
the development install). pyproject.toml declares them; tests/test_extras.py keeps the two in step.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# extra -> (the module it provides, what needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "postgres": ("asyncpg", "Reading a PostgreSQL Landscape"),
    "oidc": ("jwt", "OIDC authentication"),
    "sqlcipher": ("sqlcipher3", "Reading a SQLCipher-encrypted Landscape"),
}


class MissingExtra(RuntimeError):
    """An optional dependency is not installed; the message names the command that installs it."""

    def __init__(self, extra: str) -> None:
        _module, purpose = EXTRAS[extra]
        super().__init__(f"{purpose} needs the [{extra}] extra: pip install 'landscape-graphql[{extra}]'")
        self.extra = extra


def require(extra: str) -> ModuleType:
    """The module `extra` provides, imported; `MissingExtra` when it is not installed."""
    module, _purpose = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(extra) from None
