"""The serving process's garbage-collector tuning, checked in a process of its own."""

from __future__ import annotations

import subprocess
import sys

from landscape_graphql._process import GEN0_THRESHOLD


def test_tuning_freezes_what_exists_and_raises_the_young_threshold() -> None:
    code = ("import gc; from landscape_graphql._process import tune_garbage_collector; "
            "before = gc.get_threshold(); gc.disable(); tune_garbage_collector(); "
            "print(before[0], gc.get_threshold()[0], before[1:] == gc.get_threshold()[1:], gc.get_freeze_count() > 0, gc.isenabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", str(GEN0_THRESHOLD), "True", "True", "True"]
