"""The exported bytes are pinned: the same run gives these bytes whatever the exporter's
internals (digests taken before the bulk serialisation path replaced the per-record one).

A change here is a change of the export format: every signed export made before it would stop
being reproducible, so a new digest needs a new format id, not an edit of this table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from landscape_graphql.cli import main

PINNED = {
    (2, "fork-coalesce", "dd4c80b951824827b9ae0b45011b1d9b"): {
        "jsonl": "718551c43405c4fc9043531ba29d462334f0926463ed96d09adbd80c2adb2136",
        "json": "791ffdecce8a6e65950c4c1a2c12ac5f184b80ae4f3e20dc93fbed6a747ebbe9",
        "csv": "ffa5ea7597623cfb61c509636074f862787ec23a32e59004b0d159954851376d",
    },
    (2, "llm-calls", "6290881dbd3945acb347847a39c2e312"): {
        "jsonl": "d05a5b3d0fb7303db3fe1c81ee702b6d7f585041fc3cb5fb1978aba4d28330dd",
    },
    (29, "fork-coalesce", "56c8298eb8e046f08b99a99d3a4f670f"): {
        "jsonl": "304e24725239c646d7262b03e1206ab209b09e2cb938b3f968b5f7d00d7e60b0",
        "json": "b59315197bf7bdd2ce9757879270773d35cb7ffd859b834940fd096fd8f7a2d6",
        "csv": "d2904c32ac33efba7184df8f6149904adcad24e87da20ecde6a89f243c52a98b",
    },
    (29, "llm-calls", "40dea385c99f4451bb4ffb4293044108"): {
        "jsonl": "bc6a900e16b8fac5a2587d5c475244004197fdf8f9abc42c4e3c5e27a5eb9beb",
    },
}


@pytest.mark.parametrize("key", sorted(PINNED), ids=lambda k: f"epoch{k[0]}-{k[1]}")
def test_export_bytes_are_pinned(key: tuple[int, str, str], fixture_copies: Path, tmp_path: Path) -> None:
    epoch, name, run_id = key
    target = fixture_copies / f"epoch{epoch}" / f"{name}.db"
    for fmt, digest in PINNED[key].items():
        # A page size that splits record types mid-table, and the default.
        for page_size in ("97", "0"):
            out = tmp_path / f"{fmt}-{page_size}.{fmt}"
            assert main(["export", "--db", str(target), "--preset", "run", "--run", run_id, "-o", str(out),
                         "--format", fmt, "--page-size", page_size, "-q"]) == 0
            assert hashlib.sha256(out.read_bytes()).hexdigest() == digest, (fmt, page_size)
