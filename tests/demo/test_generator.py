"""The demo generator's databases must look like ELSPETH's and be internally consistent.

Every invariant is checked with SQL against real SQLite files, for both epochs and every shape.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from landscape_graphql.demo import SHAPES, GenerationReport, generate

EPOCHS = (2, 29)
# Small sizes per shape keep the whole matrix quick while still producing every case.
SIZES = {"mixed": 120, "fork_coalesce": 60, "expand_aggregate": 30, "llm_calls": 30, "deep_chain": 12,
         "wide_fan": 40}

UUID4 = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")

OUTCOMES_2 = {"completed", "routed", "forked", "failed", "quarantined", "diverted", "consumed_in_batch",
              "coalesced", "expanded", "buffered"}
# epoch 29: (outcome, path) -> (required columns, allowed columns), from epoch2-to-29.md.
PAIRS_29: dict[tuple[str | None, str], tuple[set[str], set[str]]] = {
    ("success", "default_flow"): ({"sink_name"}, set()),
    ("success", "gate_routed"): ({"sink_name"}, set()),
    ("success", "gate_discarded"): (set(), set()),
    ("failure", "on_error_routed"): ({"sink_name", "error_hash"}, set()),
    ("success", "filter_dropped"): (set(), set()),
    ("success", "coalesced"): ({"join_group_id"}, {"sink_name"}),
    ("failure", "unrouted"): ({"error_hash"}, set()),
    ("failure", "quarantined_at_source"): ({"error_hash"}, {"sink_name"}),
    ("transient", "sink_fallback_to_failsink"): ({"sink_name", "error_hash"}, set()),
    ("failure", "sink_discarded"): ({"sink_name", "error_hash"}, set()),
    ("transient", "fork_parent"): ({"fork_group_id"}, set()),
    ("transient", "expand_parent"): ({"expand_group_id"}, set()),
    ("transient", "batch_consumed"): ({"batch_id"}, set()),
    (None, "buffered"): ({"batch_id"}, set()),
}
DISCRIMINATORS = ("sink_name", "batch_id", "fork_group_id", "join_group_id", "expand_group_id", "error_hash")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], GenerationReport]:
    base = tmp_path_factory.mktemp("demo")
    return {(epoch, shape): generate(base / f"{shape}-{epoch}.db", epoch=epoch, shape=shape,
                                     rows=SIZES[shape], seed=7)
            for epoch in EPOCHS for shape in SHAPES}


@pytest.fixture(params=[(e, s) for e in EPOCHS for s in SHAPES], ids=lambda p: f"e{p[0]}-{p[1]}")
def report(request: pytest.FixtureRequest, built: dict[tuple[int, str], GenerationReport]) -> GenerationReport:
    return built[request.param]


@pytest.fixture
def db(report: GenerationReport) -> Iterator[sqlite3.Connection]:
    # Read-only URI: the test must not leave -wal/-shm files or change the database.
    with closing(sqlite3.connect(f"file:{report.db_path}?mode=ro", uri=True)) as conn:
        yield conn


def rows(db: sqlite3.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return list(db.execute(sql, args))


def one(db: sqlite3.Connection, sql: str, *args: Any) -> Any:
    return db.execute(sql, args).fetchone()[0]


def dump(path: Path) -> list[tuple[str, list[tuple[Any, ...]]]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return [(n, list(conn.execute(f'SELECT * FROM "{n}" ORDER BY rowid'))) for n in names]


def payload_files(base: Path) -> dict[str, bytes]:
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


# -- file-level facts ------------------------------------------------------------------------------


def test_schema_markers_and_wal(report: GenerationReport, db: sqlite3.Connection) -> None:
    assert one(db, "PRAGMA user_version") == report.epoch
    assert one(db, "PRAGMA journal_mode") == "wal"
    assert not report.db_path.with_name(report.db_path.name + "-wal").exists() or \
        report.db_path.with_name(report.db_path.name + "-wal").stat().st_size == 0
    tables = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    if report.epoch == 29:
        assert rows(db, "SELECT * FROM elspeth_schema_identity") == [(1, "elspeth", "landscape", 29)]
        assert "coalesce_effects" in tables and "sink_effect_members" in tables
    else:
        assert "elspeth_schema_identity" not in tables and "coalesce_effects" not in tables
    indexes = {r[0] for r in rows(db, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"ix_token_parents_parent", "ix_token_outcomes_terminal_unique", "ix_node_states_token"} <= indexes


def test_integrity_and_foreign_keys(db: sqlite3.Connection) -> None:
    assert one(db, "PRAGMA integrity_check") == "ok"
    assert rows(db, "PRAGMA foreign_key_check") == []


REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "schema-reference"


def test_loads_into_elspeths_own_ddl(report: GenerationReport) -> None:
    # The table models leave out some of ELSPETH's CHECKs and run-scoped foreign keys; copying
    # every row into a database built from the DDL ELSPETH itself wrote, with foreign keys on,
    # holds the data to the real constraints.
    ddl = (REFERENCE / f"epoch{report.epoch}.sql").read_text()
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as real:
        real.executescript(";".join(s for s in ddl.split(";") if "sqlite_sequence" not in s))
        real.execute("PRAGMA foreign_keys = ON")
        real.execute("ATTACH ? AS gen", (f"file:{report.db_path}?mode=ro",))
        ours = {r[0] for r in real.execute("SELECT name FROM gen.sqlite_master WHERE type = 'table'")}
        real.execute("BEGIN")
        real.execute("PRAGMA defer_foreign_keys = ON")  # tables are copied in no particular order
        for table in sorted(ours):
            theirs = list(real.execute(f'PRAGMA main.table_info("{table}")'))
            assert theirs, f"{table} is not an ELSPETH table"
            mine = {r[1] for r in real.execute(f'PRAGMA gen.table_info("{table}")')}
            assert [c[1] for c in theirs if c[1] not in mine and c[3] and c[4] is None] == [], table
            cols = ", ".join(c[1] for c in theirs if c[1] in mine)
            real.execute(f'INSERT INTO main."{table}" ({cols}) SELECT {cols} FROM gen."{table}"')
            assert one(real, f'SELECT count(*) FROM main."{table}"') == report.counts[table]
        assert rows(real, "PRAGMA main.foreign_key_check") == []
        real.execute("COMMIT")


def test_report_counts_match_the_database(report: GenerationReport, db: sqlite3.Connection) -> None:
    for table, count in report.counts.items():
        assert one(db, f'SELECT count(*) FROM "{table}"') == count, table
    assert set(report.run_ids) == {r[0] for r in rows(db, "SELECT run_id FROM runs")}
    assert report.counts["tokens"] > 0 and report.counts["batch_outputs"] == 0


# -- ids and times -----------------------------------------------------------------------------------


def test_id_formats_and_uniqueness(report: GenerationReport, db: sqlite3.Connection) -> None:
    for table, column in (("runs", "run_id"), ("rows", "row_id"), ("tokens", "token_id"),
                          ("node_states", "state_id"), ("edges", "edge_id"), ("batches", "batch_id")):
        values = [r[0] for r in rows(db, f"SELECT {column} FROM {table}")]
        assert all(UUID4.match(v) for v in values), (table, values[:3])
        assert len(values) == len(set(values))
    for group in ("fork_group_id", "join_group_id", "expand_group_id"):
        assert all(UUID4.match(r[0]) for r in rows(db, f"SELECT {group} FROM tokens WHERE {group} IS NOT NULL"))
    assert all(re.match(r"^out_[0-9a-f]{12}$", r[0]) for r in rows(db, "SELECT outcome_id FROM token_outcomes"))
    assert all(re.match(r"^verr_[0-9a-f]{12}$", r[0]) for r in rows(db, "SELECT error_id FROM validation_errors"))
    assert all(re.match(r"^terr_[0-9a-f]{12}$", r[0]) for r in rows(db, "SELECT error_id FROM transform_errors"))
    long_ids = HEX64 if report.epoch == 29 else UUID4
    for table, column in (("routing_events", "event_id"), ("routing_events", "routing_group_id"),
                          ("artifacts", "artifact_id")):
        assert all(long_ids.match(r[0]) for r in rows(db, f"SELECT {column} FROM {table}")), table
    for op_id, op_type in rows(db, "SELECT operation_id, operation_type FROM operations"):
        if report.epoch == 29 and op_type == "sink_write":
            assert HEX64.match(op_id)
        else:
            assert re.match(r"^op_[0-9a-f]{32}$", op_id)
    for call_id, op_id in rows(db, "SELECT call_id, operation_id FROM calls"):
        assert UUID4.match(call_id) or HEX64.match(call_id) or call_id.startswith(f"call_{op_id}_")
    assert all(HEX16.match(r[0]) for r in rows(db, "SELECT error_hash FROM token_outcomes WHERE error_hash IS NOT NULL"))


def test_timestamps_are_naive_utc_text(db: sqlite3.Connection) -> None:
    for table, column in (("runs", "started_at"), ("rows", "created_at"), ("tokens", "created_at"),
                          ("node_states", "started_at"), ("token_outcomes", "recorded_at"),
                          ("routing_events", "created_at"), ("calls", "created_at")):
        assert all(TS.match(r[0]) for r in rows(db, f"SELECT {column} FROM {table}")), table
    assert rows(db, "SELECT state_id FROM node_states WHERE completed_at < started_at") == []


# -- tokens and parents ----------------------------------------------------------------------------


def test_group_ids_match_parents(db: sqlite3.Connection) -> None:
    bad = rows(db, """
        SELECT t.token_id, (fork_group_id IS NOT NULL) + (join_group_id IS NOT NULL)
               + (expand_group_id IS NOT NULL) AS groups, count(p.parent_token_id) AS parents
        FROM tokens t LEFT JOIN token_parents p ON p.token_id = t.token_id
        GROUP BY t.token_id HAVING groups > 1 OR (groups = 1) != (parents > 0)""")
    assert bad == []
    # Fork children and expansions have one parent; a coalesced token one per arriving branch.
    assert rows(db, """SELECT t.token_id FROM tokens t JOIN token_parents p USING (token_id)
                       WHERE t.join_group_id IS NULL GROUP BY t.token_id HAVING count(*) != 1""") == []
    assert rows(db, """SELECT t.token_id FROM tokens t JOIN token_parents p USING (token_id)
                       WHERE t.join_group_id IS NOT NULL GROUP BY t.token_id
                       HAVING count(*) < 2 OR min(p.ordinal) != 0 OR max(p.ordinal) != count(*) - 1""") == []
    assert rows(db, "SELECT token_id FROM tokens WHERE fork_group_id IS NOT NULL AND branch_name IS NULL") == []


def test_parents_share_run_and_row(db: sqlite3.Connection) -> None:
    assert rows(db, """SELECT p.token_id FROM token_parents p JOIN tokens c ON c.token_id = p.token_id
                       JOIN tokens a ON a.token_id = p.parent_token_id
                       WHERE a.run_id != c.run_id OR a.row_id != c.row_id""") == []
    assert rows(db, "SELECT token_id FROM token_parents WHERE token_id = parent_token_id") == []


def test_children_of_one_group_come_from_one_decision(db: sqlite3.Connection) -> None:
    # Siblings of a fork or an expansion share their parent and have distinct ordinals.
    for column in ("fork_group_id", "expand_group_id"):
        assert rows(db, f"""SELECT t.{column} FROM tokens t JOIN token_parents p USING (token_id)
                            WHERE t.{column} IS NOT NULL GROUP BY t.{column}
                            HAVING count(DISTINCT p.parent_token_id) != 1
                               OR count(DISTINCT p.ordinal) != count(*)""") == []


# -- outcomes --------------------------------------------------------------------------------------


def test_outcome_pairs_are_legal(report: GenerationReport, db: sqlite3.Connection) -> None:
    if report.epoch == 29:
        table = rows(db, f"SELECT outcome, path, completed, {', '.join(DISCRIMINATORS)} FROM token_outcomes")
        for outcome, path, completed, *cols in table:
            assert (outcome, path) in PAIRS_29, (outcome, path)
            required, allowed = PAIRS_29[(outcome, path)]
            present = {name for name, value in zip(DISCRIMINATORS, cols, strict=True) if value is not None}
            assert required <= present <= required | allowed, (outcome, path, present)
            assert completed == (0 if path == "buffered" else 1)
    else:
        for outcome, terminal, sink, batch, fork, join, expand, error in rows(
                db, f"SELECT outcome, is_terminal, {', '.join(DISCRIMINATORS)} FROM token_outcomes"):
            assert outcome in OUTCOMES_2
            assert terminal == (0 if outcome == "buffered" else 1)
            assert (fork is not None) == (outcome == "forked")
            assert (join is not None) == (outcome == "coalesced")
            assert (expand is not None) == (outcome == "expanded")
            assert (batch is not None) == (outcome in ("buffered", "consumed_in_batch"))
            assert (error is not None) == (outcome in ("failed", "quarantined"))
            assert (sink is not None) == (outcome in ("completed", "routed", "quarantined"))


def test_at_most_one_terminal_outcome_and_buffered_first(report: GenerationReport, db: sqlite3.Connection) -> None:
    terminal = "completed = 1" if report.epoch == 29 else "is_terminal = 1"
    assert rows(db, f"SELECT token_id FROM token_outcomes WHERE {terminal} GROUP BY token_id HAVING count(*) > 1") == []
    assert rows(db, f"""SELECT b.token_id FROM token_outcomes b JOIN token_outcomes t
                        ON t.token_id = b.token_id AND t.{terminal} AND t.outcome_id != b.outcome_id
                        WHERE NOT b.{terminal} AND (b.recorded_at > t.recorded_at OR b.batch_id != t.batch_id)""") == []
    assert rows(db, "SELECT token_id FROM token_outcomes GROUP BY token_id HAVING count(*) > 2") == []


def test_outcome_group_ids_point_at_the_children(db: sqlite3.Connection) -> None:
    # A fork/expand parent's outcome names its children's group; a coalesced branch's outcome
    # names the join group of the token it merged into.
    for column in ("fork_group_id", "expand_group_id"):
        assert rows(db, f"""SELECT o.token_id FROM token_outcomes o WHERE o.{column} IS NOT NULL AND NOT EXISTS (
                              SELECT 1 FROM token_parents p JOIN tokens c USING (token_id)
                              WHERE p.parent_token_id = o.token_id AND c.{column} = o.{column})""") == []
    assert rows(db, """SELECT o.token_id FROM token_outcomes o WHERE o.join_group_id IS NOT NULL AND NOT EXISTS (
                         SELECT 1 FROM token_parents p JOIN tokens c USING (token_id)
                         WHERE p.parent_token_id = o.token_id AND c.join_group_id = o.join_group_id)""") == []


def test_every_token_of_a_finished_run_has_a_terminal_outcome(report: GenerationReport, db: sqlite3.Connection) -> None:
    terminal = "completed = 1" if report.epoch == 29 else "is_terminal = 1"
    missing = rows(db, f"""SELECT t.token_id FROM tokens t JOIN runs r USING (run_id)
                           WHERE r.completed_at IS NOT NULL AND NOT EXISTS (
                             SELECT 1 FROM token_outcomes o WHERE o.token_id = t.token_id AND o.{terminal})""")
    assert missing == []


# -- node states, routing, errors ------------------------------------------------------------------


def test_states_are_ordered_with_attempts(db: sqlite3.Connection) -> None:
    states: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    for token, step, attempt, status, started in rows(
            db, "SELECT token_id, step_index, attempt, status, started_at FROM node_states ORDER BY rowid"):
        states[token].append((step, attempt, status, started))
    for token, seq in states.items():
        by_time = [s[:2] for s in sorted(seq, key=lambda s: s[3])]
        assert by_time == sorted(by_time), token
        attempts: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for step, attempt, status, _ in seq:
            attempts[step].append((attempt, status))
        for tries in attempts.values():
            tries.sort()
            assert [a for a, _ in tries] == list(range(len(tries)))
            assert all(status == "failed" for _, status in tries[:-1])
    assert {r[0] for r in rows(db, "SELECT DISTINCT status FROM node_states")} <= {"open", "pending", "completed",
                                                                                  "failed"}
    assert rows(db, """SELECT state_id FROM node_states WHERE (status = 'completed' AND (output_hash IS NULL
                       OR completed_at IS NULL)) OR (status = 'failed' AND error_json IS NULL)
                       OR (status = 'open' AND completed_at IS NOT NULL)""") == []


def test_states_belong_to_nodes_of_their_run(db: sqlite3.Connection) -> None:
    assert rows(db, """SELECT s.state_id FROM node_states s JOIN tokens t USING (token_id)
                       WHERE s.run_id != t.run_id""") == []
    # Nodes are keyed per run, and a run's step indexes are consistent per node.
    assert rows(db, """SELECT run_id, node_id FROM node_states GROUP BY run_id, node_id
                       HAVING count(DISTINCT step_index) != 1""") == []


def test_routing_events_follow_edges_from_the_state_node(db: sqlite3.Connection) -> None:
    assert rows(db, """SELECT r.event_id FROM routing_events r JOIN node_states s USING (state_id)
                       JOIN edges e USING (edge_id)
                       WHERE e.from_node_id != s.node_id OR e.run_id != s.run_id
                          OR r.reason_ref IS NULL OR r.reason_hash != r.reason_ref""") == []
    assert rows(db, """SELECT routing_group_id FROM routing_events GROUP BY routing_group_id
                       HAVING count(DISTINCT state_id) != 1 OR max(ordinal) != count(*) - 1""") == []
    assert rows(db, "SELECT mode FROM routing_events WHERE mode NOT IN ('move', 'copy', 'divert')") == []


def test_validation_errors_match_quarantined_rows(report: GenerationReport, db: sqlite3.Connection) -> None:
    by_row = "AND v.row_id = r.row_id" if report.epoch == 29 else ""
    quarantined = "o.path = 'quarantined_at_source'" if report.epoch == 29 else "o.outcome = 'quarantined'"
    errors = rows(db, f"""SELECT v.error_id, s.status, o.sink_name FROM validation_errors v
                          JOIN rows r ON r.source_data_hash = v.row_hash AND r.run_id = v.run_id {by_row}
                          JOIN tokens t ON t.row_id = r.row_id
                          JOIN node_states s ON s.token_id = t.token_id AND s.step_index = 0
                          JOIN token_outcomes o ON o.token_id = t.token_id AND {quarantined}""")
    assert len(errors) == one(db, "SELECT count(*) FROM validation_errors")
    assert all(status == "failed" and sink == "quarantine" for _, status, sink in errors)


def test_transform_errors_have_failed_state_and_error_route(report: GenerationReport, db: sqlite3.Connection) -> None:
    routed = "o.path = 'on_error_routed'" if report.epoch == 29 else "o.outcome = 'routed'"
    errors = rows(db, f"""SELECT e.error_id FROM transform_errors e
                          JOIN node_states s ON s.token_id = e.token_id AND s.node_id = e.transform_id
                                             AND s.status = 'failed'
                          JOIN token_outcomes o ON o.token_id = e.token_id AND {routed}
                                                AND o.sink_name = e.destination
                          JOIN routing_events r ON r.state_id = s.state_id AND r.mode = 'divert'""")
    assert len(errors) == one(db, "SELECT count(*) FROM transform_errors")


# -- calls and operations --------------------------------------------------------------------------


def test_calls_have_one_parent_and_contiguous_indexes(report: GenerationReport, db: sqlite3.Connection) -> None:
    assert rows(db, "SELECT call_id FROM calls WHERE (state_id IS NULL) = (operation_id IS NULL)") == []
    assert rows(db, """SELECT coalesce(state_id, operation_id) FROM calls GROUP BY coalesce(state_id, operation_id)
                       HAVING min(call_index) != 0 OR max(call_index) != count(*) - 1""") == []
    assert {r[0] for r in rows(db, "SELECT DISTINCT call_type FROM calls")} <= {
        "llm", "http", "http_redirect", "sql", "vector", "filesystem"}
    if report.epoch == 29:
        # Every LLM state records the raw exchange (http) and then the LLM call.
        pairs = rows(db, """SELECT s.state_id, group_concat(c.call_type, ',') FROM node_states s
                            JOIN nodes n ON n.node_id = s.node_id AND n.run_id = s.run_id AND n.plugin_name = 'llm'
                            JOIN (SELECT * FROM calls ORDER BY call_index) c ON c.state_id = s.state_id
                            GROUP BY s.state_id""")
        assert all(types == "http,llm" for _, types in pairs)


def test_operations_per_run(report: GenerationReport, db: sqlite3.Connection) -> None:
    for run_id, completed in rows(db, "SELECT run_id, completed_at FROM runs"):
        kinds = Counter(r[0] for r in rows(db, "SELECT operation_type FROM operations WHERE run_id = ?", run_id))
        if completed is None:
            assert kinds["source_load"] == 0 and kinds["sink_write"] == 0
        else:
            assert kinds["source_load"] == 1 and kinds["sink_write"] >= 1
    if report.epoch == 29:
        assert rows(db, """SELECT operation_id FROM operations WHERE (operation_type = 'sink_write')
                           != (sink_effect_id IS NOT NULL)""") == []
        assert rows(db, """SELECT c.call_id FROM calls c JOIN operations o USING (operation_id)
                           WHERE o.operation_type = 'sink_write' AND c.call_type NOT IN ('filesystem', 'sql')""") == []


def test_artifacts_link_to_their_producer(report: GenerationReport, db: sqlite3.Connection) -> None:
    if report.epoch == 29:
        assert rows(db, """SELECT artifact_id FROM artifacts a WHERE produced_by_state_id IS NOT NULL
                           OR NOT EXISTS (SELECT 1 FROM sink_effects e WHERE e.effect_id = a.sink_effect_id
                                          AND e.artifact_id = a.artifact_id)""") == []
        # Each token a sink wrote is a member of exactly one sink effect of that sink.
        written = rows(db, """SELECT o.token_id, n.node_id FROM token_outcomes o JOIN runs r USING (run_id)
                              JOIN nodes n ON n.run_id = o.run_id AND n.node_type = 'sink'
                                          AND n.node_id LIKE 'sink\\_' || o.sink_name || '\\_%' ESCAPE '\\'
                              WHERE o.completed = 1 AND o.sink_name IS NOT NULL""")
        members = Counter(rows(db, "SELECT token_id, sink_node_id FROM sink_effect_members"))
        assert written and all(members[w] == 1 for w in written)
        assert sum(members.values()) == len(written)
    else:
        assert rows(db, """SELECT artifact_id FROM artifacts a LEFT JOIN node_states s ON s.state_id = a.produced_by_state_id
                           WHERE s.node_id IS NOT a.sink_node_id""") == []


# -- aggregation, coalesce, crashes ----------------------------------------------------------------


def test_batches_follow_the_epoch_quirks(report: GenerationReport, db: sqlite3.Connection) -> None:
    for batch_id, state_id, trigger, status, expansion in rows(
            db, f"""SELECT batch_id, aggregation_state_id, trigger_type, status,
                    {'expansion_group_id' if report.epoch == 29 else 'NULL'} FROM batches"""):
        members = [r[0] for r in rows(db, "SELECT token_id FROM batch_members WHERE batch_id = ? ORDER BY ordinal",
                                      batch_id)]
        assert members
        outputs = rows(db, """SELECT c.token_id, p.parent_token_id, c.expand_group_id FROM token_parents p
                              JOIN tokens c USING (token_id) JOIN batch_members m ON m.token_id = p.parent_token_id
                              WHERE m.batch_id = ? AND c.expand_group_id IS NOT NULL""", batch_id)
        if status == "draft":
            assert state_id is None and outputs == []
            continue
        assert one(db, "SELECT token_id FROM node_states WHERE state_id = ?", state_id) == members[0]
        expected = members[-1] if (report.epoch == 2 and trigger == "count") else members[0]
        assert outputs and {p for _, p, _ in outputs} == {expected}
        if report.epoch == 29:
            assert {g for _, _, g in outputs} == {expansion}
        consumed = "consumed_in_batch" if report.epoch == 2 else "transient"
        assert one(db, "SELECT count(*) FROM token_outcomes WHERE batch_id = ? AND outcome = ?", batch_id,
                   consumed) == len(members)
    assert one(db, "SELECT count(*) FROM batch_outputs") == 0


def test_coalesce_effects_mirror_the_merge(report: GenerationReport, db: sqlite3.Connection) -> None:
    if report.epoch != 29:
        return
    merged = {r[0] for r in rows(db, "SELECT token_id FROM tokens WHERE join_group_id IS NOT NULL")}
    effects = rows(db, """SELECT e.effect_id, e.result_token_id, e.result_join_group_id, e.expected_token_data_ref,
                          t.join_group_id, t.token_data_ref FROM coalesce_effects e
                          JOIN tokens t ON t.token_id = e.result_token_id""")
    assert {e[1] for e in effects} == merged
    for effect, token, join, ref, token_join, token_ref in effects:
        assert join == token_join and ref == token_ref
        members = rows(db, """SELECT m.parent_token_id, s.node_id, s.token_id FROM coalesce_effect_members m
                              JOIN node_states s ON s.state_id = m.parent_state_id WHERE effect_id = ?
                              ORDER BY ordinal""", effect)
        parents = [r[0] for r in rows(db, "SELECT parent_token_id FROM token_parents WHERE token_id = ? "
                                          "ORDER BY ordinal", token)]
        assert [m[0] for m in members] == parents == [m[2] for m in members]
        assert len({m[1] for m in members}) == 1
    for token, branch in rows(db, "SELECT token_id, branch_name FROM coalesce_branch_losses"):
        assert one(db, "SELECT branch_name FROM tokens WHERE token_id = ?", token) == branch
        assert one(db, "SELECT path FROM token_outcomes WHERE token_id = ?", token) == "on_error_routed"


def test_crashed_run_has_buffered_only_and_unfinished_tokens(report: GenerationReport, db: sqlite3.Connection) -> None:
    if report.shape != "mixed":
        return
    status = "interrupted" if report.epoch == 29 else "running"
    run_id = report.runs["crashed"]
    assert rows(db, "SELECT status, completed_at FROM runs WHERE run_id = ?", run_id) == [(status, None)]
    buffered = report.tokens["buffered_only"]
    assert [r[0] for r in rows(db, "SELECT outcome_id FROM token_outcomes WHERE token_id = ?", buffered)] != []
    terminal = "completed" if report.epoch == 29 else "is_terminal"
    assert rows(db, f"SELECT {terminal} FROM token_outcomes WHERE token_id = ?", buffered) == [(0,)]
    loose = report.tokens["no_outcome"]
    assert one(db, "SELECT count(*) FROM token_outcomes WHERE token_id = ?", loose) == 0
    assert rows(db, "SELECT status FROM node_states WHERE token_id = ? ORDER BY step_index", loose) == [
        ("completed",), ("open",)]
    assert one(db, "SELECT status FROM batches WHERE batch_id = (SELECT batch_id FROM batch_members WHERE "
                   "token_id = ?)", buffered) == "draft"


def test_run_status_follows_the_outcomes(report: GenerationReport, db: sqlite3.Connection) -> None:
    for run_id, status, completed in rows(db, "SELECT run_id, status, completed_at FROM runs"):
        if completed is None:
            assert status == ("interrupted" if report.epoch == 29 else "running")
            continue
        failures = one(db, """SELECT count(*) FROM token_outcomes WHERE run_id = ? AND outcome IN
                              ('failure', 'failed', 'quarantined') OR (run_id = ? AND outcome = 'routed'
                              AND token_id IN (SELECT token_id FROM transform_errors))""", run_id, run_id)
        if report.epoch == 29:
            assert status == ("completed_with_failures" if failures else "completed")
        else:
            assert status == "completed"


def test_scheduler_events_chain_per_work_item(report: GenerationReport, db: sqlite3.Connection) -> None:
    if report.epoch != 29:
        return
    chains: dict[str, list[tuple[str | None, str, str]]] = defaultdict(list)
    for work, token, src, dst in rows(db, """SELECT work_item_id, token_id, from_status, to_status
                                             FROM scheduler_events ORDER BY recorded_at, rowid"""):
        chains[work].append((src, dst, token))
    assert chains
    for chain in chains.values():
        assert len({token for _, _, token in chain}) == 1
        assert chain[0][0] is None
        assert all(prev[1] == nxt[0] for prev, nxt in pairwise(chain))
    finished = {r[0] for r in rows(db, """SELECT t.token_id FROM tokens t JOIN runs r USING (run_id)
                                         WHERE r.completed_at IS NOT NULL""")}
    ends = {chain[0][2]: chain[-1][1] for chain in chains.values()}
    assert all(ends[t] == "terminal" for t in finished & set(ends))
    quarantined = {r[0] for r in rows(db, "SELECT token_id FROM token_outcomes WHERE path = 'quarantined_at_source'")}
    assert quarantined.isdisjoint(ends)
    # Everything else in a finished run went through the scheduler.
    assert finished - quarantined <= set(ends)


def test_scheduler_events_can_be_left_out(tmp_path: Path) -> None:
    report = generate(tmp_path / "x.db", epoch=29, rows=40, shape="fork_coalesce", scheduler_events=False)
    assert report.counts["scheduler_events"] == 0 and report.counts["tokens"] > 150
    with closing(sqlite3.connect(report.db_path)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


# -- payloads --------------------------------------------------------------------------------------


REFS = (("rows", "source_data_ref", "source_data_hash"), ("calls", "request_ref", "request_hash"),
        ("calls", "response_ref", "response_hash"), ("routing_events", "reason_ref", "reason_hash"),
        ("operations", "input_data_ref", "input_data_hash"), ("operations", "output_data_ref", "output_data_hash"))


def test_payload_refs_resolve_and_hash_match(report: GenerationReport, db: sqlite3.Connection) -> None:
    refs = list(REFS) + ([("tokens", "token_data_ref", None)] if report.epoch == 29 else [])
    seen = set()
    for table, ref_col, hash_col in refs:
        pairs = rows(db, f"SELECT {ref_col}, {hash_col or ref_col} FROM {table} WHERE {ref_col} IS NOT NULL")
        for ref, digest in pairs:
            assert ref == digest and HEX64.match(ref)
            data = (report.payload_dir / ref[:2] / ref).read_bytes()
            assert hashlib.sha256(data).hexdigest() == ref
            json.loads(data)
            seen.add(ref)
    files = payload_files(report.payload_dir)
    assert {Path(name).name for name in files} == seen  # nothing stray, nothing missing
    assert len(files) == report.payload_files
    # Row payloads are canonical JSON, as ELSPETH stores them.
    for (ref,) in rows(db, "SELECT source_data_ref FROM rows"):
        data = (report.payload_dir / ref[:2] / ref).read_bytes()
        assert json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode() == data


def test_token_payloads_hold_data_and_contract(report: GenerationReport, db: sqlite3.Connection) -> None:
    if report.epoch != 29:
        return
    kinds = rows(db, """SELECT token_data_ref IS NOT NULL, join_group_id IS NOT NULL OR expand_group_id IS NOT NULL
                        FROM tokens""")
    assert all(has_ref == needs_ref for has_ref, needs_ref in kinds)
    for (ref,) in rows(db, "SELECT token_data_ref FROM tokens WHERE token_data_ref IS NOT NULL LIMIT 50"):
        body = json.loads((report.payload_dir / ref[:2] / ref).read_bytes())
        assert set(body) == {"data", "contract"} and body["contract"]["fields"]


# -- the interesting tokens ------------------------------------------------------------------------


def test_named_cases_show_their_shape(report: GenerationReport, db: sqlite3.Connection) -> None:
    cases = report.tokens
    for token in cases.values():
        assert one(db, "SELECT count(*) FROM tokens WHERE token_id = ?", token) == 1

    def parents(token: str) -> int:
        return int(one(db, "SELECT count(*) FROM token_parents WHERE token_id = ?", token))

    def children(token: str) -> int:
        return int(one(db, "SELECT count(*) FROM token_parents WHERE parent_token_id = ?", token))

    if "coalesced_multi_parent" in cases:
        assert parents(cases["coalesced_multi_parent"]) == 3
        assert children(cases["forked_parent"]) == 3
        assert one(db, "SELECT count(*) FROM node_states WHERE token_id = ? AND status = 'failed'",
                   cases["failed_state"]) == 1
    if "expand_child" in cases:
        assert parents(cases["expand_child"]) == 1 and children(cases["expand_parent"]) >= 1
        assert parents(cases["batch_output_child"]) == 1
        assert one(db, "SELECT count(*) FROM batch_members WHERE token_id = ?", cases["consumed_in_batch"]) == 1
    if "retried_state" in cases:
        attempts = rows(db, """SELECT s.attempt, s.status, count(c.call_id) FROM node_states s
                               LEFT JOIN calls c USING (state_id) WHERE s.token_id = ? AND s.step_index = 1
                               GROUP BY s.state_id ORDER BY s.attempt""", cases["retried_state"])
        calls = 2 if report.epoch == 29 else 1
        assert attempts == [(0, "failed", calls), (1, "completed", calls)]
        assert one(db, "SELECT count(*) FROM calls c JOIN node_states s USING (state_id) WHERE s.token_id = ?",
                   cases["with_calls"]) == calls
    if "deep_chain_leaf" in cases:
        depth = one(db, """WITH RECURSIVE up(token_id, depth) AS (SELECT ?, 0 UNION ALL
                           SELECT p.parent_token_id, depth + 1 FROM token_parents p JOIN up USING (token_id))
                           SELECT max(depth) FROM up""", cases["deep_chain_leaf"])
        expected = SIZES["deep_chain"] if report.shape == "deep_chain" else max(5, SIZES["mixed"] // 20)
        assert depth == expected
    if "wide_fan_root" in cases:
        expected = SIZES["wide_fan"] if report.shape == "wide_fan" else max(10, SIZES["mixed"] // 4)
        assert children(cases["wide_fan_root"]) == expected


def test_mixed_has_every_case(built: dict[tuple[int, str], GenerationReport]) -> None:
    wanted = {"forked_parent", "fork_child", "coalesced_multi_parent", "failed_state", "transform_error",
              "branch_transform_error", "validation_error", "expand_parent", "expand_child", "batch_output_child",
              "batch_parent_member", "consumed_in_batch", "end_of_source_output", "retried_state", "with_calls",
              "llm_transform_error", "gate_routed", "default_flow", "database_sink", "buffered_only", "no_outcome",
              "deep_chain_root", "deep_chain_leaf", "wide_fan_root", "wide_fan_child"}
    for epoch in EPOCHS:
        report = built[(epoch, "mixed")]
        assert wanted <= set(report.tokens)
        assert len(report.run_ids) == 7


# -- determinism, scaling, arguments ---------------------------------------------------------------


@pytest.mark.parametrize("epoch", EPOCHS)
def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, epoch: int) -> None:
    a = generate(tmp_path / "a.db", epoch=epoch, rows=60, seed=3)
    b = generate(tmp_path / "b.db", epoch=epoch, rows=60, seed=3, parallel=True)  # helper processes
    c = generate(tmp_path / "c.db", epoch=epoch, rows=60, seed=4)
    assert dump(a.db_path) == dump(b.db_path)
    assert payload_files(a.payload_dir) == payload_files(b.payload_dir)
    assert a.tokens == b.tokens and a.counts == b.counts
    assert dump(a.db_path) != dump(c.db_path)
    assert set(a.tokens.values()).isdisjoint(c.tokens.values())


@pytest.mark.parametrize("epoch", EPOCHS)
def test_fork_coalesce_scales_with_fixture_ratios(tmp_path: Path, epoch: int) -> None:
    small = generate(tmp_path / "s.db", epoch=epoch, rows=500, shape="fork_coalesce")
    big = generate(tmp_path / "b.db", epoch=epoch, rows=4300, shape="fork_coalesce")
    assert big.counts["rows"] == 4300 and small.counts["rows"] == 500
    # ~20,000 tokens: the size the brief asks to stay fast (timed in the report, not here).
    assert 19_000 <= big.counts["tokens"] <= 21_500
    assert 4.5 <= big.counts["tokens"] / 4300 <= 4.9
    assert 10.1 <= big.counts["node_states"] / 4300 <= 10.6
    assert big.counts["tokens"] > 8 * small.counts["tokens"]


@pytest.mark.parametrize("shape", ["deep_chain", "wide_fan"])
def test_chain_and_fan_sizes_follow_rows(tmp_path: Path, shape: str) -> None:
    for n in (5, 50):
        report = generate(tmp_path / f"{n}.db", epoch=29, rows=n, shape=shape)
        assert report.counts["tokens"] == n + 1


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "x.db"
    first = generate(out, epoch=2, rows=10, shape="llm_calls")
    with pytest.raises(FileExistsError):
        generate(out, epoch=2, rows=10, shape="llm_calls")
    second = generate(out, epoch=2, rows=10, shape="llm_calls", overwrite=True)
    assert second.counts == first.counts and second.payload_dir == tmp_path / "x.payloads"


def test_custom_payload_dir(tmp_path: Path) -> None:
    report = generate(tmp_path / "x.db", epoch=29, rows=8, shape="wide_fan", payloads=tmp_path / "store")
    assert report.payload_dir == tmp_path / "store" and report.payload_files > 0
    assert not (tmp_path / "x.payloads").exists()


@pytest.mark.parametrize("kwargs", [{"epoch": 3}, {"shape": "nope"}, {"rows": 0}])
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path / "x.db", **kwargs)
    assert not (tmp_path / "x.db").exists()
