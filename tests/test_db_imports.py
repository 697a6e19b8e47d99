"""The `db` package is the bottom layer: importing all of it loads neither Strawberry nor graphql-core.

Run in a fresh interpreter, since this one has imported both long before any test runs.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import landscape_graphql.db

DB_MODULES = sorted(f"landscape_graphql.db.{m.name}" for m in pkgutil.iter_modules(landscape_graphql.db.__path__))


def test_the_db_package_imports_neither_strawberry_nor_graphql_core() -> None:
    assert "landscape_graphql.db.engine" in DB_MODULES and "landscape_graphql.db.records" in DB_MODULES
    script = (
        "import importlib, sys\n"
        f"for name in {DB_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'strawberry', 'graphql'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
