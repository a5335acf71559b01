"""docs/trl.md's CPU example gives GRPO something to learn (issue 11 item 7): after the warm start
the rewards are not all 0, so groups with mixed rewards (a learning signal) occur."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trl_log_odds.py"


@pytest.mark.slow
def test_cpu_example_has_a_learning_signal(tmp_path):
    spec = importlib.util.spec_from_file_location("trl_log_odds", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--out", str(tmp_path), "--steps", "8", "--eval-steps", "4", "--warm-start-steps", "60"])
    groups = [json.loads(line) for line in (tmp_path / "groups.jsonl").read_text().splitlines()]
    train = [g for g in groups if g["split"] == "train"]
    assert train and sum(g["p_hat"] for g in train) > 0  # without the warm start: 0 at every step
    assert any(0 < g["p_hat"] < 1 for g in train)  # mixed groups: nonzero GRPO advantages
