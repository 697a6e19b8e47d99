"""Runs last: after the whole suite, every vendored fixture file has exactly its first bytes."""

from __future__ import annotations

import pytest

from tests.conftest import DIGESTS, fixture_digests


def test_fixture_bytes_unchanged_by_the_suite(request: pytest.FixtureRequest) -> None:
    before = request.config.stash[DIGESTS]
    after = fixture_digests()
    assert before, "no fixture files were hashed"
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"fixture files changed or appeared: {changed[:10]}"
