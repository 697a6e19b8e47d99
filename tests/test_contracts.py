"""Run.contract and Run.field(name): the source schema contracts ELSPETH recorded, on SQLite and PostgreSQL.

ELSPETH's analytics files hold no contract answers, so the expectation is what its tools
(get_run_contract, explain_field) make of the stored JSON: the same fields, mode, lock and
version hash, the hash verified. Where we differ on purpose: every source of a run, not the
first only (checked on a copy of a fixture given two more sources); an unknown name is a
BAD_ARGUMENT listing the fields there are, where ELSPETH answers an error dict with them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from landscape_graphql.db.contracts import ContractField, FieldOrigin, version_hash
from landscape_graphql.db.engine import open_landscape
from landscape_graphql.db.pgload import load_sqlite_into_postgres
from tests._analytics import ANALYTICS_FIXTURES
from tests.conftest import FIXTURES, PG_DUMP, Api

FIELDS = "normalizedName originalName pythonType required nullable origin"
CONTRACT = f"""contract {{ sourceNodeId sourceName plugin lifecycleState recordedAt mode locked versionHash
  fields {{ {FIELDS} }} normalizationVersion nameResolution {{ originalName normalizedName }} node {{ nodeId }} }}"""
RUNS = "{ runs(first: 50) { nodes { runId " + CONTRACT + " } } }"
FIELD = """query ($r: String!, $n: String!) { run(runId: $r) { field(name: $n) {
  source { sourceName sourceNodeId mode } field { """ + FIELDS + " } } } }"


def _stored(epoch: int, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """run -> [(contract JSON, hash column, resolution JSON)] straight from the fixture file.

    immutable=1: a WAL database opened even read-only gets -wal and -shm files beside it, and
    the vendored fixtures must stay byte for byte as ELSPETH wrote them (tests/zz_last).
    """
    with sqlite3.connect(f"file:{FIXTURES / f'epoch{epoch}' / f'{name}.db'}?mode=ro&immutable=1", uri=True) as conn:
        if epoch == 2:
            rows = conn.execute("SELECT run_id, schema_contract_json, schema_contract_hash, "
                                "source_field_resolution_json FROM runs").fetchall()
        else:
            rows = conn.execute("SELECT run_id, schema_contract_json, schema_contract_hash, field_resolution_json "
                                "FROM run_sources ORDER BY source_name").fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for run_id, *rest in rows:
        out.setdefault(run_id, []).append(tuple(rest))
    return out


def _elspeth_contract(text: str) -> dict[str, Any]:
    """ELSPETH's get_run_contract of a stored contract (its shape, without run_id)."""
    c = json.loads(text)
    fields = [{k: f[k] for k in ("normalized_name", "original_name", "python_type", "required", "source")}
              for f in c["fields"]]
    return {"mode": c["mode"], "locked": c["locked"], "fields": fields, "field_count": len(fields),
            "version_hash": c["version_hash"]}


def _as_elspeth(source: dict[str, Any]) -> dict[str, Any]:
    fields = [{"normalized_name": f["normalizedName"], "original_name": f["originalName"],
               "python_type": f["pythonType"], "required": f["required"], "source": f["origin"].lower()}
              for f in source["fields"]]
    return {"mode": source["mode"], "locked": source["locked"], "fields": fields, "field_count": len(fields),
            "version_hash": source["versionHash"]}


@pytest.mark.parametrize(("epoch", "name"), ANALYTICS_FIXTURES)
async def test_contracts_are_elspeths(apis: dict[tuple[int, str], Api], epoch: int, name: str) -> None:
    stored = _stored(epoch, name)
    result = await apis[(epoch, name)].run(RUNS)
    assert not result.errors, result.errors
    runs = {r["runId"]: r["contract"] for r in result.data["runs"]["nodes"]}
    assert set(runs) == set(stored)
    for run_id, sources in runs.items():
        assert len(sources) == len(stored[run_id]) == 1  # every fixture run has one source
        (source,), ((text, column_hash, resolution),) = sources, stored[run_id]
        assert _as_elspeth(source) == _elspeth_contract(text)
        assert source["versionHash"] == column_hash
        assert source["node"]["nodeId"] == source["sourceNodeId"] and source["sourceNodeId"].startswith("source_")
        mapping = json.loads(resolution)["resolution_mapping"] if resolution else {}
        assert {r["originalName"]: r["normalizedName"] for r in source["nameResolution"]} == mapping
        if epoch == 2:
            assert (source["sourceName"], source["lifecycleState"], source["recordedAt"]) == (None, None, None)
        else:
            assert (source["sourceName"], source["lifecycleState"]) == ("primary", "EXHAUSTED")


async def test_contract_of_elspeths_own_postgresql_database(apis: dict[tuple[int, str], Api]) -> None:
    if PG_DUMP not in apis:
        return  # ELSPETH's PostgreSQL dump exists only on the PostgreSQL backend
    (run,) = (await apis[PG_DUMP].ok(RUNS))["runs"]["nodes"]
    (source,) = run["contract"]
    # The same pipeline as epoch 29's fork-coalesce, written by ELSPETH into PostgreSQL.
    assert [f["normalizedName"] for f in source["fields"]] == ["amount", "category", "customer", "id", "notes"]
    assert source["versionHash"] == "3e87b4b648bac664c080ca3332115c7f"


async def test_field_by_normalized_or_original_name(apis: dict[tuple[int, str], Api]) -> None:
    """explain_field's resolution: the run with CSV headers like "Customer ID!!" normalized."""
    api = apis[(2, "examples-multirun")]
    run_id = "3c3bd54057cd4fcfab4497d2050ef552"
    by_original = await api.ok(FIELD, {"r": run_id, "n": "Customer ID!!"})
    by_normalized = await api.ok(FIELD, {"r": run_id, "n": "customer_id"})
    assert by_original == by_normalized
    (found,) = by_original["run"]["field"]
    assert found["field"] == {"normalizedName": "customer_id", "originalName": "Customer ID!!", "pythonType": "str",
                              "required": True, "nullable": False, "origin": "DECLARED"}
    assert found["source"]["mode"] == "FLEXIBLE"
    missing = await api.run(FIELD, {"r": run_id, "n": "nope"})
    assert missing.data == {"run": {"field": None}}
    (error,) = missing.errors
    assert error["extensions"]["code"] == "BAD_ARGUMENT"
    assert "customer_id" in error["message"] and run_id in error["message"]


async def test_contract_costs_the_same_for_1_and_12_runs(apis: dict[tuple[int, str], Api]) -> None:
    api = apis[(2, "examples-multirun")]
    one = await api.run(RUNS.replace("first: 50", "first: 1"))
    many = await api.run(RUNS)
    assert len(many.data["runs"]["nodes"]) == 12
    assert one.statements == many.statements == 2  # the runs page, every contract with its node
    # Run.field reads the same loader: unknown names (errors) cost nothing more either.
    fields = await api.run('{ runs(first: 50) { nodes { field(name: "amount") { field { pythonType } } } } }')
    assert fields.statements == 2 and fields.errors


# -- edited copies of a fixture ----------------------------------------------------------------

def _contract_json(mode: str, fields: list[ContractField], *, digest: str | None = None) -> str:
    body = {"fields": [{"normalized_name": f.normalized_name, "nullable": f.nullable,
                        "original_name": f.original_name, "python_type": f.python_type, "required": f.required,
                        "source": f.origin.value} for f in fields],
            "locked": True, "mode": mode, "version_hash": digest or version_hash(mode, True, fields)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


SECONDARY = [ContractField("amount", "Amount (USD)", "float", True, False, FieldOrigin.DECLARED),
             ContractField("region", "region", "str", False, True, FieldOrigin.INFERRED)]


def _add_sources(conn: sqlite3.Connection) -> str:
    """Give epoch 29 fork-coalesce's run two more sources: one with a contract, one without yet."""
    run_id, node_id = conn.execute("SELECT run_id, source_node_id FROM run_sources").fetchone()
    columns = [r[1] for r in conn.execute("PRAGMA table_info(nodes)")]
    node = dict(zip(columns, conn.execute("SELECT * FROM nodes WHERE node_id = ?", (node_id,)).fetchone(), strict=True))
    for name, plugin, contract in (("secondary", "json", _contract_json("FLEXIBLE", SECONDARY)),
                                   ("tertiary", "csv", None)):
        new_node = {**node, "node_id": f"source_{name}_0123456789ab", "plugin_name": plugin}
        conn.execute(f"INSERT INTO nodes ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     tuple(new_node.values()))
        conn.execute(
            "INSERT INTO run_sources (run_id, source_node_id, source_name, plugin_name, lifecycle_state, config_hash, "
            "schema_json, schema_contract_json, schema_contract_hash, field_resolution_json, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, '2026-11-22 02:08:34.000000')",
            (run_id, new_node["node_id"], name, plugin, "exhausted" if contract else "ready", "0" * 64, contract,
             json.loads(contract)["version_hash"] if contract else None))
    return str(run_id)


Edit = Callable[[sqlite3.Connection], Any]


@pytest.fixture
async def edited(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """Open a copy of epoch 29 fork-coalesce changed by `edit`, on the session's backend."""
    opened: list[Any] = []

    async def make(edit: Edit) -> tuple[Api, Any]:
        path = tmp_path / f"edited-{len(opened)}.db"
        shutil.copy2(FIXTURES / "epoch29" / "fork-coalesce.db", path)
        with sqlite3.connect(path) as conn:
            outcome = edit(conn)
        sqlite3.connect(path).close()
        target = str(path)
        if backend == "postgresql":
            cluster = request.getfixturevalue("pg_cluster")
            target = cluster.create_database(f"contracts_{tmp_path.name[-20:].replace('-', '_')}_{len(opened)}")
            await load_sqlite_into_postgres(path, target)
        landscape = await open_landscape(target)
        opened.append(landscape)
        return Api(landscape), outcome

    yield make
    for landscape in opened:
        await landscape.dispose()


async def test_every_source_of_a_multi_source_run(edited: Callable[..., Any]) -> None:
    api, run_id = await edited(_add_sources)
    data = await api.ok(RUNS)
    (run,) = data["runs"]["nodes"]
    primary, secondary, tertiary = run["contract"]
    assert primary["versionHash"] == "3e87b4b648bac664c080ca3332115c7f"
    assert [s["sourceName"] for s in run["contract"]] == ["primary", "secondary", "tertiary"]
    assert (secondary["plugin"], secondary["mode"], secondary["sourceNodeId"]) == \
        ("json", "FLEXIBLE", "source_secondary_0123456789ab")
    assert secondary["fields"][0] == {"normalizedName": "amount", "originalName": "Amount (USD)", "pythonType": "float",
                                      "required": True, "nullable": False, "origin": "DECLARED"}
    assert secondary["fields"][1]["origin"] == "INFERRED"
    # A source that has not locked its contract yet: listed, with no contract.
    assert (tertiary["lifecycleState"], tertiary["mode"], tertiary["versionHash"], tertiary["fields"]) == \
        ("READY", None, None, [])
    # A name two sources have: both, each with its own type; an original name only its source.
    both = (await api.ok(FIELD, {"r": run_id, "n": "amount"}))["run"]["field"]
    assert [(f["source"]["sourceName"], f["field"]["pythonType"]) for f in both] == \
        [("primary", "int"), ("secondary", "float")]
    (only,) = (await api.ok(FIELD, {"r": run_id, "n": "Amount (USD)"}))["run"]["field"]
    assert only["source"]["sourceName"] == "secondary" and only["field"]["normalizedName"] == "amount"
    (region,) = (await api.ok(FIELD, {"r": run_id, "n": "region"}))["run"]["field"]
    assert region["source"]["sourceName"] == "secondary"


def _tamper(conn: sqlite3.Connection) -> str:
    """A type changed after the fact: the stored version_hash no longer matches the content."""
    (text,) = conn.execute("SELECT schema_contract_json FROM run_sources").fetchone()
    conn.execute("UPDATE run_sources SET schema_contract_json = ?", (text.replace('"python_type":"int"',
                                                                                  '"python_type":"str"', 1),))
    return str(conn.execute("SELECT run_id FROM runs").fetchone()[0])


def _garble(conn: sqlite3.Connection) -> str:
    conn.execute("UPDATE run_sources SET schema_contract_json = '{\"mode\": \"FIXED\", \"fields\": '")
    return str(conn.execute("SELECT run_id FROM runs").fetchone()[0])


def _rehash_column(conn: sqlite3.Connection) -> str:
    conn.execute("UPDATE run_sources SET schema_contract_hash = 'ffffffffffffffffffffffffffffffff'")
    return str(conn.execute("SELECT run_id FROM runs").fetchone()[0])


@pytest.mark.parametrize(("edit", "detail"), [(_tamper, "is not the hash of the contract"),
                                              (_garble, "not JSON"),
                                              (_rehash_column, "differs from the contract's version_hash")])
async def test_a_bad_contract_is_an_integrity_error_naming_the_run(edited: Callable[..., Any], edit: Edit,
                                                                   detail: str) -> None:
    api, run_id = await edited(edit)
    result = await api.run("{ runs { nodes { runId status contract { mode } } } }")
    (error,) = result.errors
    assert error["extensions"]["code"] == "AUDIT_INTEGRITY"
    assert run_id in error["message"] and "source primary" in error["message"] and detail in error["message"]
    # Only the contract fails: the rest of the run still answers.
    (run,) = result.data["runs"]["nodes"]
    assert (run["runId"], run["contract"]) == (run_id, None) and run["status"]


async def test_a_landscape_without_run_sources_has_no_contracts(edited: Callable[..., Any]) -> None:
    """The demo generator wrote no run_sources before it modelled them (the benchmark's databases)."""
    api, _ = await edited(lambda conn: conn.execute("DROP TABLE run_sources"))
    data = await api.ok("{ runs { nodes { runId contract { mode } } } }")
    assert data["runs"]["nodes"][0]["contract"] == []
