"""SQLCipher-encrypted Landscapes through the whole API, and the refusals around the key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from landscape_graphql.db._sqlcipher import encrypt_copy
from landscape_graphql.db.engine import EngineOptions, open_landscape
from landscape_graphql.errors import UnsupportedDatabase, WrongKey
from tests.conftest import FIXTURES, Api, truth

KEY = "correct horse battery staple ' \" ;--"
CASE = truth(29, "llm-calls")["runs"][0]["cases"]["with_calls"]


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cipher")
    plain, target = folder / "plain.db", folder / "audit.db"
    shutil.copy2(FIXTURES / "epoch29" / "llm-calls.db", plain)  # never open a fixture in place (WAL)
    encrypt_copy(plain, target, KEY)
    assert b"SQLite format 3" not in target.read_bytes()[:100]
    return target


async def test_an_encrypted_landscape_answers_like_the_plain_one(encrypted: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AUDIT_KEY", KEY)
    landscape = await open_landscape(str(encrypted), EngineOptions(sqlcipher=True, key_env="TEST_AUDIT_KEY"))
    api = Api(landscape)
    try:
        assert (landscape.backend, landscape.epoch) == ("sqlcipher", 29)
        data = await api.ok("query ($t: String!) { token(tokenId: $t) { calls { callId callType } "
                            "outcome { result path sinkName } } landscape { backend } }", {"t": CASE["token_id"]})
        assert [c["callId"] for c in data["token"]["calls"]] == [c["call_id"] for c in CASE["calls"]]
        assert data["token"]["outcome"]["sinkName"] == CASE["outcome"]["sink_name"]
        assert data["landscape"]["backend"] == "sqlcipher"
    finally:
        api.counter.close()
        await landscape.dispose()


async def test_a_wrong_key_is_refused_without_echoing_it(encrypted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AUDIT_KEY", "not the key 12345")
    with pytest.raises(WrongKey) as caught:
        await open_landscape(str(encrypted), EngineOptions(sqlcipher=True, key_env="TEST_AUDIT_KEY"))
    assert "TEST_AUDIT_KEY" in caught.value.message
    assert "not the key" not in str(caught.value) and caught.value.__cause__ is None


async def test_a_missing_key_names_the_variable(encrypted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_AUDIT_KEY", raising=False)
    with pytest.raises(UnsupportedDatabase, match="TEST_AUDIT_KEY is not set"):
        await open_landscape(str(encrypted), EngineOptions(sqlcipher=True, key_env="TEST_AUDIT_KEY"))


async def test_an_encrypted_file_opened_as_plain_sqlite_says_it_may_be_encrypted(encrypted: Path) -> None:
    with pytest.raises(UnsupportedDatabase, match="encrypted"):
        await open_landscape(str(encrypted))


def test_the_cli_refuses_a_wrong_key_clearly(encrypted: Path) -> None:
    secret = "hunter2-wrong"
    done = subprocess.run(
        [sys.executable, "-m", "landscape_graphql.cli", "serve", "--db", str(encrypted), "--sqlcipher",
         "--key-env", "TEST_AUDIT_KEY", "--port", "1"],
        env={"TEST_AUDIT_KEY": secret, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "does not open" in done.stderr and "TEST_AUDIT_KEY" in done.stderr
    assert secret not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
