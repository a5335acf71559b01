"""The papers' printed numbers: each paper has claims against a number printed in it (source: the arXiv id,
version and where it is printed), compared with what our code computes, each able to fail; values we computed
because the paper's could not be read say so."""

from __future__ import annotations

import numpy as np
import pytest

from rlvrlens.paper_repro import davis_recht, mroueh, xiong

ARXIV = {davis_recht: "arXiv:2510.13651", mroueh: "arXiv:2503.06639", xiong: "arXiv:2504.11343"}


@pytest.mark.parametrize("module", list(ARXIV), ids=lambda m: m.KEY)
def test_each_paper_has_a_printed_number_claim_with_its_source(module) -> None:
    claims = module.printed_claims()
    printed = [c for c in claims if c.source.startswith("printed:")]
    assert printed, f"{module.KEY}: no claim on a printed number"
    for c in printed:
        assert ARXIV[module] in c.source and c.kind == "paper", c.source
    for c in claims:
        assert c.verdict == "PASS", (c.statement, c.measured, c.criterion)
        assert c.explanation, f"{c.statement}: say what a wrong implementation would do"
        assert c.source.startswith(("printed:", "computed, not printed")), c.source
    # they are part of the fast claims that every run reports
    assert {c.statement for c in claims} <= {c.statement for c in module.claims()}


def test_mroueh_computed_values_are_flagged_computed_not_printed() -> None:
    computed = [c for c in mroueh.printed_claims() if "computed, not printed" in c.source]
    assert computed and all(c.kind != "paper" for c in computed)


def test_davis_recht_printed_value_catches_a_wrong_transform(monkeypatch) -> None:
    monkeypatch.setattr(davis_recht, "arcsine", lambda t: 2 * np.arcsin(np.asarray(t, float)) / np.pi)  # no sqrt
    assert davis_recht.printed_claims()[0].verdict == "FAIL"


def test_mroueh_printed_epsilon_catches_epsilon_outside_the_root(monkeypatch) -> None:
    def wrong(steps: int = mroueh.FIG5_STEPS, p0: float = mroueh.FIG5_P0):  # 1/(sqrt(p(1-p)) + eps)
        from scipy import special

        B, P = np.array(mroueh.FIG5_BETAS)[:, None], np.array(mroueh.FIG5_PREFS)[None, :]
        x = np.full(B.shape[:1] + P.shape[1:], special.logit(p0))
        for _ in range(steps):
            x = special.logit(P) + 1 / (np.sqrt(special.expit(x) * special.expit(-x)) + mroueh.EPS) / B
        return type("T", (), {"logit": np.stack([x] * 2)})()

    monkeypatch.setattr(mroueh, "fig5_trajectories", wrong)
    assert mroueh.printed_claims()[0].verdict == "FAIL"


def test_xiong_printed_clip_catches_a_symmetric_clip(monkeypatch) -> None:
    from rlvrlens.training import losses

    real = losses.clipped_policy_loss
    monkeypatch.setattr(losses, "clipped_policy_loss",
                        lambda logp, old, adv, eps_low=0.2, eps_high=0.2: real(logp, old, adv, eps_low, eps_low))
    verdicts = [c.verdict for c in xiong.printed_claims()]
    assert verdicts[0] == "FAIL" and verdicts[1] == "PASS"


def test_printed_table1_is_shown_with_its_source() -> None:
    tab = xiong.table1_table()
    rows = {r[0]: r[1:] for r in tab.rows}
    assert rows["GRPO"] == (56.3, 28.4) and rows["Reinforce-Rej"] == (56.4, 28.5) and rows["RAFT"] == (52.3, 25.9)
    assert "arXiv:2504.11343v2" in tab.caption and "not recomputed" in tab.caption
    assert "56.1 vs RAFT 52.3" in xiong._printed_relation("RAFT++", "RAFT")
