"""The shared vocabulary: KL treatments (old names refused), logits, and the run-record format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import special

from rlvrlens.core import kl, records
from rlvrlens.core.logit import clipped_logit, logit, logit_rms
from rlvrlens.dynamics import flow, flow_target, stationary_points, success_map
from rlvrlens.objectives import get_scheme


@pytest.mark.parametrize("call", [
    lambda k: stationary_points(get_scheme("grpo", 4), 1.0, 0.2, kl=k),
    lambda k: flow_target(success_map(get_scheme("grpo", 4), 1.0, 0.2), k),
    lambda k: flow(success_map(get_scheme("grpo", 4), 1.0, 0.2), 3, kl=k),
])
@pytest.mark.parametrize("old", ["forward", "reverse"])
def test_the_old_direction_names_are_refused_with_the_new_ones(call, old):
    """An old script must not silently get the other direction: one line naming both new values."""
    with pytest.raises(ValueError, match=r"kl='pi\|\|ref' for KL\(pi\|\|pi_ref\).*kl='ref\|\|pi' for KL\(pi_ref\|\|pi\)"):
        call(old)


def test_treatments_and_their_names_follow_the_field():
    """k2/exact: grad KL(pi||pi_ref), which TRL, OpenRLHF and verl call the reverse KL; k3: the other one."""
    assert [kl.treatment_of(e) for e in ("exact", "k1", "k2", "k3", "reward")] == \
        ["pi||ref", "none", "pi||ref", "ref||pi", "reward"]
    assert kl.describe("pi||ref") == "KL(pi||pi_ref), the reverse KL"
    assert kl.describe("ref||pi") == "KL(pi_ref||pi), the forward KL"
    for treatment, estimator in kl.TREATMENT_ESTIMATOR.items():
        assert kl.treatment_of(estimator) == treatment
    with pytest.raises(ValueError, match="kl_estimator must be one of k1, k2, k3, exact"):
        kl.check_estimator("k4")
    # the point each treatment names solves its own equation (THEORY.md section 4)
    s = get_scheme("grpo", 4)
    p_pi_ref = stationary_points(s, 1.0, 0.05, "pi||ref")[0].p
    p_ref_pi = stationary_points(s, 1.0, 0.05, "ref||pi")[0].p
    from rlvrlens.objectives import dh
    assert abs(special.logit(p_pi_ref) - special.logit(0.05) - float(dh(s, p_pi_ref))) < 1e-9
    assert abs(p_ref_pi * (1 - p_ref_pi) * float(dh(s, p_ref_pi)) - (p_ref_pi - 0.05)) < 1e-9


def test_logits_exact_and_clipped():
    assert logit([0.0, 0.5, 1.0]).tolist() == [-math.inf, 0.0, math.inf]
    with pytest.raises(ValueError, match=r"p must be finite and in \[0, 1\]"):
        logit(1.5)
    np.testing.assert_allclose(clipped_logit([0.0, 0.25, 1.0]), [special.logit(1e-12), math.log(1 / 3), special.logit(1 - 1e-12)])
    assert logit_rms([[0.5, 0.2]], [[0.5, 0.5]]) == pytest.approx(abs(math.log(0.25)) / math.sqrt(2))


def test_jsonl_records_drop_a_partial_last_line_and_name_a_corrupt_one(tmp_path):
    f = tmp_path / "success.jsonl"
    records.append_lines(f, [{"step": 0, "p": [0.5, float("nan")]}, {"step": 1, "x": float("inf")}])
    assert json.loads(f.read_text().splitlines()[0]) == {"step": 0, "p": [0.5, None]}  # valid JSON: no NaN
    with f.open("a") as fh:
        fh.write('{"step": 2, "p"')
    assert [r["step"] for r in records.read_jsonl(f)] == [0, 1]
    assert records.complete_lines(f)[0] == 2
    f.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="success.jsonl: line 2 is not valid JSON"):
        records.read_jsonl(f)
    f.write_text('[1, 2]\n{"step": 1}\n')
    with pytest.raises(ValueError, match="line 1 must be a JSON object, got list"):
        records.read_jsonl(f)
    f.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ValueError, match="success.jsonl: not a text file"):
        records.read_jsonl(f)
    assert records.json_ready({"a": np.array([1.0, np.inf]), "b": (np.int64(2),)}) == {"a": [1.0, None], "b": [2]}
