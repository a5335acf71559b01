"""The coupled kernel model against the trainer (validation.coupling): one step from the same state,
tabular (exact first order) and on the tiny transformer with the KL term."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rlvrlens.forecast.coupled import predicted_change, step_size_for
from rlvrlens.forecast.probes import kernel, kl_projection, success_jacobian
from rlvrlens.objectives import get_scheme
from rlvrlens.training.success import exact_success
from rlvrlens.training.trainer import Trainer
from rlvrlens.validation.coupling import coupling_scheme, one_step
from rlvrlens.validation.setups import tabular_setup, theory_config


def test_one_sgd_step_of_the_trainer_matches_the_kernel_prediction_tabular():
    """Tabular policy (exact first-order check possible): Monte-Carlo mean of Delta p over repeated
    steps within 4 standard errors of (lr/N) K h'(p); a prediction off by 30% would be rejected."""
    pol, task, _ = tabular_setup([0.2, 0.6], copies=1)
    pol.requires_grad_(True)
    scheme = get_scheme("rloo", 4)
    recs = one_step(pol, task, scheme, lr=0.02, repeats=400, seed=1)
    for r in recs:
        assert abs(r["z"]) < 4, r
        assert abs(0.7 * r["predicted"] - r["measured"]) > 4 * r["measured_se"], r
    # parameters are restored after the repeats (no aliasing with the saved vector)
    np.testing.assert_allclose(exact_success(pol, task).detach().numpy(), [0.2, 0.6], rtol=1e-10)


@pytest.mark.slow
def test_one_step_with_the_kl_term_and_its_completion_space(tiny_setup):
    """Away from pi_ref, one SGD step with k2 of the sequence (beta = 1) against the coupled prediction
    including -beta <grad p_x, grad KL_y>: every prompt within 4 SE at a step whose larger term moves p
    by 5e-4 (at 4 times that, second-order terms put prompt 0 at z = -4.2), while the same
    prediction without the KL term is more than 4 SE off for some prompt (the term is measured, not
    negligible). The exact KL is the two-token space's, so a task that samples longer is refused."""
    setup = tiny_setup
    task = setup.task.subset(setup.prompts, name="v")
    base = setup.policy.clone(trainable=True)
    scheme, K, p0 = coupling_scheme(base, task, 8)
    lr = step_size_for(K, scheme, p0, 0.004)
    Trainer(theory_config(task, scheme, lr=3 * lr, seed=5), policy=base, task=task, scheme=scheme).train(50)
    with pytest.raises(ValueError, match="max_new_tokens must be 2"):
        one_step(base, task, scheme, lr=lr, repeats=2, beta=1.0, ref=setup.policy)
    short = dataclasses.replace(task, max_new_tokens=2)
    p, G = success_jacobian(base, short)
    K = kernel(G)
    small = step_size_for(K, scheme, p, 5e-4, kl=kl_projection(base, setup.policy, short, G).sum(1))
    recs = one_step(base, short, scheme, lr=small, repeats=40, seed=1, beta=1.0, ref=setup.policy)
    no_kl = predicted_change(K, scheme, p, small)
    assert all(abs(r["z"]) < 4 for r in recs), recs
    assert max(abs(r["measured"] - q) / r["measured_se"] for r, q in zip(recs, no_kl)) > 4
