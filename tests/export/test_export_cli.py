"""`landscape-graphql export` and `verify` end to end, on ELSPETH's own databases.

Counts are checked against independent SQL per table, not against the exporter's own queries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from landscape_graphql.cli import main
from tests.conftest import payload_dir

# Every record type with the SQL that counts a run's records of it, written independently.
COUNT_SQL = {
    "run": "SELECT count(*) FROM runs WHERE run_id = :r",
    "node": "SELECT count(*) FROM nodes WHERE run_id = :r",
    "edge": "SELECT count(*) FROM edges WHERE run_id = :r",
    "operation": "SELECT count(*) FROM operations WHERE run_id = :r",
    "call": "SELECT count(*) FROM calls c LEFT JOIN node_states s ON s.state_id = c.state_id "
            "LEFT JOIN operations o ON o.operation_id = c.operation_id WHERE s.run_id = :r OR o.run_id = :r",
    "row": "SELECT count(*) FROM rows WHERE run_id = :r",
    "token": "SELECT count(*) FROM tokens WHERE run_id = :r",
    "token_parent": "SELECT count(*) FROM token_parents p JOIN tokens t ON t.token_id = p.token_id WHERE t.run_id = :r",
    "token_outcome": "SELECT count(*) FROM token_outcomes WHERE run_id = :r",
    "node_state": "SELECT count(*) FROM node_states WHERE run_id = :r",
    "routing_event": "SELECT count(*) FROM routing_events e JOIN node_states s ON s.state_id = e.state_id "
                     "WHERE s.run_id = :r",
    "batch": "SELECT count(*) FROM batches WHERE run_id = :r",
    "batch_member": "SELECT count(*) FROM batch_members m JOIN batches b ON b.batch_id = m.batch_id WHERE b.run_id = :r",
    "artifact": "SELECT count(*) FROM artifacts WHERE run_id = :r",
    "validation_error": "SELECT count(*) FROM validation_errors WHERE run_id = :r",
    "transform_error": "SELECT count(*) FROM transform_errors WHERE run_id = :r",
    "preflight_result": "SELECT count(*) FROM preflight_results WHERE run_id = :r",
    "checkpoint": "SELECT count(*) FROM checkpoints WHERE run_id = :r",
}
COUNT_SQL_29 = {
    "sink_effect": "SELECT count(*) FROM sink_effects WHERE run_id = :r",
    "sink_effect_member": "SELECT count(*) FROM sink_effect_members WHERE run_id = :r",
    "coalesce_effect": "SELECT count(*) FROM coalesce_effects WHERE run_id = :r",
    "coalesce_effect_member": "SELECT count(*) FROM coalesce_effect_members WHERE run_id = :r",
    "coalesce_branch_loss": "SELECT count(*) FROM coalesce_branch_losses WHERE run_id = :r",
    "scheduler_event": "SELECT count(*) FROM scheduler_events WHERE run_id = :r",
}


def sync_url(target: str) -> str:
    return target.replace("postgresql+asyncpg://", "postgresql+psycopg2://") if "://" in target \
        else f"sqlite:///{target}"


def db_counts(target: str, epoch: int, run_id: str) -> dict[str, int]:
    queries = {**COUNT_SQL, **(COUNT_SQL_29 if epoch == 29 else {})}
    if "://" in target:
        import asyncio

        from sqlalchemy.ext.asyncio import create_async_engine

        async def go() -> dict[str, int]:
            engine = create_async_engine(target)
            try:
                async with engine.connect() as conn:
                    return {k: (await conn.execute(text(q), {"r": run_id})).scalar_one() for k, q in queries.items()}
            finally:
                await engine.dispose()
        return asyncio.run(go())
    engine = create_engine(f"sqlite:///file:{target}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:
            return {k: conn.execute(text(q), {"r": run_id}).scalar_one() for k, q in queries.items()}
    finally:
        engine.dispose()


def first_run(target: str) -> str:
    import asyncio

    from landscape_graphql.db.engine import open_landscape

    async def go() -> str:
        ls = await open_landscape(target)
        try:
            async with ls.engine.connect() as conn:
                return str((await conn.execute(text("SELECT run_id FROM runs ORDER BY started_at"))).scalars().first())
        finally:
            await ls.dispose()
    return asyncio.run(go())


def cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    key = Ed25519PrivateKey.generate()
    (folder / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    (folder / "k.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    other = Ed25519PrivateKey.generate().public_key()
    (folder / "other.pub").write_bytes(other.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return folder / "k.pem", folder / "k.pub"


def target_for(backend: str, key: tuple[int, str], fixture_copies: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(fixture_copies / f"epoch{key[0]}" / f"{key[1]}.db")
    return str(request.getfixturevalue("pg_databases")[key])


@pytest.mark.parametrize("key", [(2, "fork-coalesce"), (2, "expand-aggregate"), (29, "fork-coalesce"),
                                 (29, "llm-calls")])
def test_run_export_counts_and_determinism(backend: str, key: tuple[int, str], fixture_copies: Path,
                                           request: pytest.FixtureRequest, tmp_path: Path,
                                           keys: tuple[Path, Path]) -> None:
    target = target_for(backend, key, fixture_copies, request)
    run_id = first_run(target)
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "-o", tmp_path / name,
                   "--sign-key", keys[0], "--page-size", "333", "-q") == 0
        outs.append(tmp_path / name)
    a, b = (p.read_bytes() for p in outs)
    assert a == b
    ma, mb = (json.loads((tmp_path / f"{n}.manifest.json").read_text()) for n in ("a.jsonl", "b.jsonl"))
    assert ma["root"] == mb["root"] and ma["record_count"] == a.count(b"\n")
    assert ma["run"]["run_id"] == run_id and ma["database"]["epoch"] == key[0]
    got = Counter(json.loads(line)["record_type"] for line in a.splitlines())
    expected = {k: v for k, v in db_counts(target, key[0], run_id).items() if v}
    assert dict(got) == expected
    assert cli("verify", outs[0], "--pubkey", keys[1]) == 0


@pytest.fixture(scope="module")
def exported(fixture_copies: Path, tmp_path_factory: pytest.TempPathFactory,
             keys: tuple[Path, Path]) -> tuple[Path, str, str]:
    target = str(fixture_copies / "epoch2" / "fork-coalesce.db")
    run_id = first_run(target)
    out = tmp_path_factory.mktemp("exp") / "run.jsonl"
    os.environ["I12_TEST_HMAC"] = "hmac-secret"
    assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "-o", out, "--sign-key", keys[0],
               "--hmac-key-env", "I12_TEST_HMAC", "-q") == 0
    return out, target, run_id


def copy_export(src: Path, dest: Path) -> Path:
    out = dest / src.name
    out.write_bytes(src.read_bytes())
    (dest / f"{src.name}.manifest.json").write_bytes(Path(f"{src}.manifest.json").read_bytes())
    return out


def test_verify_failures(exported: tuple[Path, str, str], tmp_path: Path, keys: tuple[Path, Path],
                         capsys: pytest.CaptureFixture[str]) -> None:
    src = exported[0]
    capsys.readouterr()
    # one flipped byte inside a value
    case = tmp_path / "flip"
    case.mkdir()
    out = copy_export(src, case)
    data = bytearray(out.read_bytes())
    at = data.index(b'"token_id":"') + 13
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    out.write_bytes(bytes(data))
    assert cli("verify", out, "--pubkey", keys[1]) == 3
    assert "chunk 0 (records 0-" in capsys.readouterr().err
    # a flipped byte that breaks the JSON names the record
    data = bytearray(src.read_bytes())
    data[data.index(b"\n") + 1] = ord("[")
    out.write_bytes(bytes(data))
    assert cli("verify", out, "--pubkey", keys[1]) == 3
    assert "record 1 " in capsys.readouterr().err
    # one dropped line
    lines = src.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:100] + lines[101:]))
    assert cli("verify", out, "--pubkey", keys[1]) == 3
    assert "records were dropped or added" in capsys.readouterr().err
    # a wrong key
    out = copy_export(src, case)
    assert cli("verify", out, "--pubkey", keys[1].with_name("other.pub")) == 3
    assert "not by ed25519:" in capsys.readouterr().err
    os.environ["I12_WRONG"] = "not-the-key"
    assert cli("verify", out, "--hmac-key-env", "I12_WRONG") == 3
    assert "HMAC-SHA256 of the manifest does not match" in capsys.readouterr().err
    assert cli("verify", out, "--pubkey", keys[1], "--hmac-key-env", "I12_TEST_HMAC") == 0
    # an edited manifest (kept canonical, so only the signature can tell)
    manifest_file = Path(f"{out}.manifest.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["run"]["status"] = "failed"
    manifest_file.write_bytes(rfc8785.dumps(manifest) + b"\n")
    assert cli("verify", out, "--pubkey", keys[1]) == 3
    assert "Ed25519 signature of the manifest does not match" in capsys.readouterr().err
    manifest_file.write_text(json.dumps(manifest, indent=1))
    assert cli("verify", out, "--pubkey", keys[1]) == 3
    assert "not in canonical form" in capsys.readouterr().err


def test_records_range_and_slip(exported: tuple[Path, str, str], tmp_path: Path, keys: tuple[Path, Path],
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = exported[0]
    assert cli("verify", out, "--records", "10-1009", "--pubkey", keys[1]) == 0
    assert "(1 chunk(s) read)" in capsys.readouterr().err
    slip = tmp_path / "slip.json"
    assert cli("verify", out, "--prove", "777", "-o", slip, "--pubkey", keys[1]) == 0
    isolated = tmp_path / "alone"
    isolated.mkdir()
    (isolated / "slip.json").write_bytes(slip.read_bytes())
    assert cli("verify", "--slip", isolated / "slip.json", "--pubkey", keys[1]) == 0
    data = json.loads(slip.read_text())
    record = json.loads(data["record"])
    record["run_id"] = "0" * 32
    data["record"] = rfc8785.dumps(record).decode()
    (isolated / "slip.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert cli("verify", "--slip", isolated / "slip.json", "--pubkey", keys[1]) == 3
    assert "record 777 of the slip does not lead to the signed root" in capsys.readouterr().err


def test_resume_after_kill_is_byte_identical(exported: tuple[Path, str, str], tmp_path: Path) -> None:
    _, target, run_id = exported
    out = tmp_path / "resumed.jsonl"
    args = [sys.executable, "-m", "landscape_graphql.cli", "export", "--db", target, "--preset", "run",
            "--run", run_id, "-o", str(out), "--page-size", "7", "--checkpoint-every", "0", "-q"]
    process = subprocess.Popen(args)
    checkpoint = tmp_path / "resumed.jsonl.checkpoint.json"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() or json.loads(checkpoint.read_text() or "{}").get("records", 0) < 2000:
        assert process.poll() is None, "the export finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists() and (tmp_path / "resumed.jsonl.part").exists()
    assert subprocess.run([*args, "--resume"], check=False).returncode == 0
    whole = tmp_path / "whole.jsonl"
    assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "-o", whole, "-q") == 0
    assert out.read_bytes() == whole.read_bytes()
    assert (json.loads(Path(f"{out}.manifest.json").read_text())["root"]
            == json.loads(Path(f"{whole}.manifest.json").read_text())["root"])
    assert not checkpoint.exists()


def test_elspeth_v1_hmacs_as_elspeth_defines_them(exported: tuple[Path, str, str], tmp_path: Path) -> None:
    _, target, run_id = exported
    os.environ["ELSPETH_SIGNING_KEY"] = "elspeth-key"
    out = tmp_path / "elspeth.jsonl"
    assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "--format", "elspeth-v1",
               "--hmac-key-env", "ELSPETH_SIGNING_KEY", "-o", out, "-q") == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    *body, manifest = records
    running = hashlib.sha256()
    key = b"elspeth-key"
    for record in [*body, manifest]:
        signature = record.pop("signature")
        # ELSPETH 0.4.1: hmac.new(key, canonical_json(record).encode("utf-8"), sha256).hexdigest()
        assert hmac.new(key, rfc8785.dumps(record), hashlib.sha256).hexdigest() == signature
        if record is not manifest:
            running.update(signature.encode())
    assert manifest["record_type"] == "manifest" and manifest["record_count"] == len(body)
    assert manifest["final_hash"] == running.hexdigest()
    assert manifest["hash_algorithm"] == "sha256" and manifest["signature_algorithm"] == "hmac-sha256"
    run = body[0]
    assert set(run) == {"record_type", "run_id", "status", "started_at", "completed_at", "canonical_version",
                        "config_hash", "settings", "reproducibility_grade"}
    assert isinstance(run["settings"], dict)
    states = [r for r in body if r["record_type"] == "node_state"]
    assert states and all(set(s) >= {"success_reason_json", "context_after_json"} for s in states)
    assert {r["record_type"] for r in body} <= {"run", "node", "edge", "operation", "call", "row", "token",
                                               "token_parent", "token_outcome", "node_state", "routing_event",
                                               "batch", "batch_member", "artifact"}
    outcomes = [r for r in body if r["record_type"] == "token_outcome"]
    assert outcomes and all(isinstance(o["is_terminal"], bool) for o in outcomes)


QUERY_ONE = """query ($after: String) { runs(first: 5, after: $after) {
  pageInfo { hasNextPage endCursor } nodes { runId status config: settings } } }"""
QUERY_NONE = """query { runs(first: 5) { nodes { runId } } }"""
QUERY_NO_AFTER = """query ($after: String) { runs(first: 5) { pageInfo { hasNextPage endCursor } nodes { runId } } }"""
QUERY_TWO = """query ($r: String!, $after: String) { run(runId: $r) {
  rows(first: 5, after: $after) { pageInfo { hasNextPage endCursor } nodes { rowId } }
  tokens(first: 5, after: $after) { pageInfo { hasNextPage endCursor } nodes { tokenId } } } }"""


@pytest.mark.parametrize(("query", "message"), [
    (QUERY_NONE, "declares no $after variable"),
    (QUERY_NO_AFTER, "data.runs selects pageInfo but does not take after: $after"),
    (QUERY_TWO, "has 2 paged connections (data.run.rows, data.run.tokens): choose one with --path"),
])
def test_query_refused(exported: tuple[Path, str, str], tmp_path: Path, query: str, message: str,
                       capsys: pytest.CaptureFixture[str]) -> None:
    q = tmp_path / "q.graphql"
    q.write_text(query)
    capsys.readouterr()
    assert cli("export", "--db", exported[1], "--query", q, "--var", "r=x", "-o", tmp_path / "o.jsonl") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_query_path_picks_one_connection(exported: tuple[Path, str, str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    q = tmp_path / "q.graphql"
    q.write_text(QUERY_TWO)
    out = tmp_path / "tokens.jsonl"
    capsys.readouterr()
    assert cli("export", "--db", exported[1], "--query", q, "--var", f"r={exported[2]}", "--path",
               "data.run.tokens", "-o", out, "-q") == 2
    assert "data.run.rows also takes after: $after" in capsys.readouterr().err
    q.write_text(QUERY_TWO.replace("rows(first: 5, after: $after)", "rows(first: 5, after: $rowsAfter)")
                 .replace("$after: String)", "$after: String, $rowsAfter: String)"))
    assert cli("export", "--db", exported[1], "--query", q, "--var", f"r={exported[2]}", "--path",
               "data.run.tokens", "-o", out, "-q") == 0
    assert len(out.read_text().splitlines()) == 1406  # the fixture's tokens (shared/landscape README)


def test_csv_columns_and_escaping(fixture_copies: Path, tmp_path: Path) -> None:
    import csv
    target = str(fixture_copies / "epoch2" / "examples-multirun.db")
    q = tmp_path / "q.graphql"
    q.write_text(QUERY_ONE)
    out = tmp_path / "runs.csv"
    assert cli("export", "--db", target, "--query", q, "--format", "csv", "-o", out, "-q") == 0
    raw = out.read_bytes()
    assert raw.startswith(b"runId,status,config\r\n")
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + 12
    # settings JSON (quotes, commas) in one cell, quoted as RFC 4180 says, reading back the same
    assert all(isinstance(json.loads(r[2]), dict) for r in rows[1:])
    assert b'""' in raw
    from landscape_graphql.export.formats import CsvFormat
    fmt = CsvFormat(["a", "b.c", "d"], excel_safe=True)
    line = fmt.encode(0, b"", {"a": "=1+1", "b": {"c": "-5"}, "d": 'x,"y"\nz'})
    assert line == b"'=1+1,'-5,\"x,\"\"y\"\"\nz\"\r\n"
    plain = CsvFormat(["a", "items.n"], explode="items")
    assert plain.encode(0, b"", {"a": 1, "items": [{"n": 1}, {"n": 2}]}) == b"1,1\r\n1,2\r\n"


def test_url_against_the_real_app(exported: tuple[Path, str, str], tmp_path: Path,
                                  fixture_copies: Path) -> None:
    from landscape_graphql.app import AppConfig, create_app
    from landscape_graphql.auth import build_authenticator, hash_token
    from tests.live_server import serve
    _, target, run_id = exported
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": [{"name": "script", "sha256": hash_token("tok-123")}]}))
    app = create_app(AppConfig(database=target, authenticator=build_authenticator(tokens_file=tokens)))
    local = tmp_path / "local.jsonl"
    assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "-o", local, "-q") == 0
    with serve(app) as url:
        remote = tmp_path / "remote.jsonl"
        assert cli("export", "--url", url, "--preset", "run", "--run", run_id, "-o", remote, "-q") == 1
        os.environ["I12_TOKEN"] = "tok-123"
        assert cli("export", "--url", url, "--token-env", "I12_TOKEN", "--preset", "run", "--run", run_id,
                   "-o", remote, "-q") == 0
    assert remote.read_bytes() == local.read_bytes()
    assert (json.loads(Path(f"{remote}.manifest.json").read_text())["root"]
            == json.loads(Path(f"{local}.manifest.json").read_text())["root"])


def test_json_and_gzip_verify(exported: tuple[Path, str, str], tmp_path: Path) -> None:
    _, target, run_id = exported
    for name in ("r.json", "r.jsonl.gz"):
        out = tmp_path / name
        assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "-o", out, "-q",
                   "--format", "json" if name == "r.json" else "jsonl") == 0
        assert cli("verify", out) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())) > 1000


def test_with_payloads(fixture_copies: Path, tmp_path: Path) -> None:
    target = str(fixture_copies / "epoch2" / "llm-calls.db")
    run_id = first_run(target)
    out = tmp_path / "p.jsonl"
    assert cli("export", "--db", target, "--preset", "run", "--run", run_id, "--with-payloads", "--payloads",
               payload_dir(2, "llm-calls"), "-o", out, "-q") == 0
    calls = [r for r in map(json.loads, out.read_text().splitlines()) if r["record_type"] == "call"]
    assert calls and any(c["request_payload"]["state"] == "AVAILABLE" and c["request_payload"]["text"]
                         for c in calls)
