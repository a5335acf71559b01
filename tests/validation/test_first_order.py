"""First order on prompts the model was not warm-started on (validation.first_order.step_sweep, issue
21 item 1 at a small size): the common factor measured/predicted of one SGD step of the trainer,
extrapolated to a zero step, is 1 within 3 standard errors; and the same factor from many sampled
groups without a step (validation.first_order.sampled_factor), with the verifier checked against the
enumerated accepted set completion by completion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rlvrlens.objectives import get_scheme
from rlvrlens.training.tasks import modular_arithmetic
from rlvrlens.training.task import Task
from rlvrlens.validation.first_order import sampled_factor, step_sweep
from rlvrlens.validation.setups import lm_setup
from rlvrlens.validation.sizes import get_size
from rlvrlens.validation.verdicts import first_order_sampled_rows


def test_one_step_on_held_out_prompts_is_first_order_in_the_limit():
    """The tiny transformer, eight prompts of another seed than its warm start (p 0.04-0.31), GRPO
    M = 8, 48 repeats at three step sizes with common random numbers: the zero-step factor and the
    step projected on grad p within 3 standard errors of 1 (measured: 1.04 ± 0.10 and 0.97 ± 0.06;
    at the largest step 0.86 ± 0.05, the second order). The standard error is below 0.15, so a
    prediction off by a factor 1.5 (a 1/M, a 1/N or a wrong h'_M) is rejected."""
    torch.manual_seed(0)
    size = get_size("tiny")
    setup = lm_setup(size)
    task = modular_arithmetic(8, moduli=size.moduli, seed=size.seed + 7)
    assert not set(task.prompts) & set(setup.task.prompts)  # held out
    records = step_sweep(setup.policy, task, get_scheme("grpo", 8), targets=(0.005, 0.01, 0.02), repeats=48,
                         seed=5, label="held out")
    for kind in ("first_order_limit", "first_order_projected"):
        r = next(r for r in records if r["experiment"] == kind)
        assert r["ratio_se"] < 0.15, r
        assert abs(r["ratio"] - 1) <= 3 * r["ratio_se"], r


def _held_out(size):
    return modular_arithmetic(8, moduli=size.moduli, seed=size.seed + 7)


def test_sampled_factor_on_held_out_prompts_is_one_and_the_verifier_is_the_enumerated_set(tiny_setup):
    """The same held-out prompts, 256 groups of M = 8 per prompt and no step: the common factor of
    the coupled prediction within 3 standard errors of 1 with a standard error below 0.03 (measured
    over six seeds: 0.991 mean, 0.014 spread, 0.020 stated), so a 7% deficit (the issue's 0.93) is
    more than 2 standard errors off; the verifier rewards exactly the enumerated token sequences on
    all 16,384 completions; the central differences within 1% of autograd."""
    pol = tiny_setup.policy.clone(trainable=True)
    before = [q.detach().clone() for q in pol.parameters()]
    records = sampled_factor(pol, _held_out(get_size("tiny")), get_scheme("grpo", 8), groups=256,
                             generator=torch.Generator().manual_seed(1), label="held out")
    r = records[-1]
    assert r["experiment"] == "first_order_sampled" and r["completions"] == 8 * 256 * 8
    assert r["mismatches"] == 0 and r["fd_rel_error"] < 0.01, r
    assert r["ratio_se"] < 0.03 and abs(r["ratio"] - 1) <= 3 * r["ratio_se"], r
    own = records[:-1]
    assert len(own) == 8 and all(abs(q["z"]) <= 4 for q in own), own
    # the pooled numerator is the sum of the prompts' projections (a wrong sum or a missing prompt breaks it)
    assert sum(q["on_w"] for q in own) / sum(q["on_w_predicted"] for q in own) == pytest.approx(r["ratio"])
    assert all(torch.equal(a, b) for a, b in zip(before, pol.parameters()))


def test_sampled_factor_rejects_a_verifier_that_rewards_more_than_the_exact_p_counts(tiny_setup):
    """A verifier that also accepts the answer "0" everywhere (the sampler is then rewarded for
    completions the exact p does not sum over): mismatches are counted (636 of 16,384 measured) and
    the factor moves far outside its error (measured 0.75 ± 0.02), so the check can fail."""
    task = _held_out(get_size("tiny"))

    class Lenient(Task):
        def rewards(self, prompts, completions):
            r = super().rewards(prompts, completions)
            return np.maximum(r, np.array([c.strip() == "0" for c in completions], dtype=r.dtype))

    lenient = Lenient(**{f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.init})
    r = sampled_factor(tiny_setup.policy.clone(trainable=True), lenient, get_scheme("grpo", 8), groups=256,
                       generator=torch.Generator().manual_seed(1))[-1]
    assert r["mismatches"] > 100, r
    assert abs(r["ratio"] - 1) > 5 * r["ratio_se"], r
    rows = first_order_sampled_rows([{**r, "family": "lenient"}])
    assert rows[0]["verdict"] != "agrees"


def test_sampled_factor_verdicts_follow_the_records():
    """A family within 3 SE of 1 agrees only when no completion disagrees; two families pool by inverse variance."""
    base = {"experiment": "first_order_sampled", "prompts": 8, "groups": 256, "M": 8, "scheme": "grpo",
            "completions": 16384, "mismatches": 0}
    recs = [{**base, "family": "a", "ratio": 0.98, "ratio_se": 0.02, "z": -1.0},
            {**base, "family": "b", "ratio": 1.04, "ratio_se": 0.04, "z": 1.0},
            {**base, "family": "c", "ratio": 1.0, "ratio_se": 0.02, "z": 0.0, "mismatches": 3}]
    rows = first_order_sampled_rows(recs)
    assert [v["verdict"] for v in rows[:3]] == ["agrees", "agrees", "gap"]
    w = np.array([1 / 0.02 ** 2, 1 / 0.04 ** 2, 1 / 0.02 ** 2])
    assert rows[3]["measurement"] == f"{w @ [0.98, 1.04, 1.0] / w.sum():.3f} ± {w.sum() ** -0.5:.3f}"


def test_sampled_factor_refuses_fewer_than_two_groups(tiny_setup):
    with pytest.raises(ValueError, match="groups must be an integer >= 2"):
        sampled_factor(tiny_setup.policy, _held_out(get_size("tiny")), get_scheme("grpo", 8), groups=1,
                       generator=torch.Generator())
