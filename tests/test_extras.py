"""Optional dependencies: declared as extras, and refused at use with the command that installs them.

Each refusal runs in a fresh interpreter where the extra's module cannot be imported (a None in
sys.modules makes `import` raise ImportError, as for a package that is not installed).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from landscape_graphql.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]


def _without(module: str, code: str) -> str:
    script = f"import sys\nsys.modules[{module!r}] = None\n{code}"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def test_pyproject_declares_each_extra_and_all_and_dev_pull_them() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    base = {re.split(r"[\[<>=!~; ]", r)[0].lower() for r in project["dependencies"]}
    for extra in EXTRAS:
        assert extra in optional, extra
        assert not {re.split(r"[\[<>=!~; ]", r)[0].lower() for r in optional[extra]} & base
    assert optional["all"] == [f"landscape-graphql[{','.join(EXTRAS)}]"]
    assert any(r.startswith("landscape-graphql[") and "all" in r for r in optional["dev"])
    bounded = {re.split(r"[\[<>=!~; ]", r)[0]: r for r in project["dependencies"]}
    assert "<0.342" in bounded["strawberry-graphql"] and "<3.4" in bounded["graphql-core"]


def test_postgres_without_the_extra_is_refused_naming_the_install_command() -> None:
    out = _without("asyncpg", (
        "import asyncio\n"
        "from landscape_graphql.db.engine import open_landscape\n"
        "from landscape_graphql.errors import UnsupportedDatabase\n"
        "try:\n"
        "    asyncio.run(open_landscape('postgresql://127.0.0.1:9/landscape'))\n"
        "except UnsupportedDatabase as exc:\n"
        "    print('refused:', exc.message)\n"))
    assert "refused: Reading a PostgreSQL Landscape needs the [postgres] extra: " \
           "pip install 'landscape-graphql[postgres]'" in out, out


def test_sqlcipher_without_the_extra_is_refused_naming_the_install_command(tmp_path: Path) -> None:
    database = tmp_path / "encrypted.db"
    database.write_bytes(b"\0" * 4096)
    out = _without("sqlcipher3", (
        "import asyncio, os\n"
        "os.environ['LANDSCAPE_TEST_KEY'] = 'secret'\n"
        "from landscape_graphql.db.engine import EngineOptions, open_landscape\n"
        "from landscape_graphql.errors import UnsupportedDatabase\n"
        "try:\n"
        f"    asyncio.run(open_landscape({str(database)!r}, "
        "EngineOptions(sqlcipher=True, key_env='LANDSCAPE_TEST_KEY')))\n"
        "except UnsupportedDatabase as exc:\n"
        "    print('refused:', exc.message)\n"))
    assert "refused: Reading a SQLCipher-encrypted Landscape needs the [sqlcipher] extra: " \
           "pip install 'landscape-graphql[sqlcipher]'" in out, out


def test_oidc_without_the_extra_is_refused_when_configured() -> None:
    out = _without("jwt", (
        "from landscape_graphql.auth import OIDCConfig, build_authenticator\n"
        "from landscape_graphql.extras import MissingExtra\n"
        "config = OIDCConfig(issuer='https://idp.example.test', audience='a', "
        "jwks_url='https://idp.example.test/jwks')\n"
        "try:\n"
        "    build_authenticator(oidc=config)\n"
        "except MissingExtra as exc:\n"
        "    print('refused:', exc)\n"))
    assert "refused: OIDC authentication needs the [oidc] extra: pip install 'landscape-graphql[oidc]'" in out, out


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_extra_is_installed_in_the_development_venv(extra: str) -> None:
    from landscape_graphql.extras import require

    assert require(extra).__name__ == EXTRAS[extra][0]
