"""Theory against measurement on real models: ``rlvrlens validate`` as a reproduction with claims.

The experiments live in :mod:`rlvrlens.validation` (expected step with its power, relative speed,
estimator-aware fixed points, the mean-field ODE, the flow in a 2-cycle regime, the coupled kernel
model on a tiny transformer, transformer fixed points with the exact KL); this module states what
the theory predicts about them as claims and puts their figures and verdict table on the index
page. The run size is ``demo`` (the cpu experiments, one transformer fixed-point run: a few minutes)
unless the environment variable ``RLVRLENS_VALIDATION_PRESET`` names another (``tiny`` for a quick
look, ``cpu`` for the full sweep, ``gpu`` on a lent accelerator).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from rlvrlens.core.records import read_jsonl
from rlvrlens.paper_repro.claims import Claim, at_least, at_most, estimated
from rlvrlens.paper_repro.report import FigureFile, Reproduction, Table

KEY = "validation"
TITLE = ("Theory against measurement: predicted versus measured on a tabular policy, a tiny transformer and "
         "SmolLM2-135M-Instruct")
REFERENCE = ("Davis & Recht (2025), Theorem 1 (expected step = grad h_M); Mroueh (2025) and THEORY.md §2 "
             "(KL-regularised success map, fixed points); measured with rlvrlens.training")


#: Committed measurements of ``rlvrlens validate --preset smollm2-cpu`` (issue 14.5; the folder's
#: NOTE.md says when, where and how long). Absent from an installed wheel: the claims are then skipped.
SMOLLM2_RESULTS = Path(__file__).parent / "results" / "smollm2-cpu"

#: Why the SmolLM2 forecast misses (measured; README "Theory against measurement").
FORECAST_GAP = ("Measured (forecast/measurements.jsonl): the forecast runs ahead of the run, one sign for every "
                "prompt on average (mean signed logit error +0.45 at step 10, +1.0 to +1.3 from step 20 on), while "
                "the prompts move fastest (about 3 logit in 20 steps): a bias of the coupled first-order model with "
                "K and Adam's v frozen at step 0, not probe noise (its band holds 42% of the measured points). The "
                "logit RMS weighs the saturated prompts (0.998 forecast against 0.97 measured is 2.7 logit); in p "
                "the forecast's mean error is 0.06, against 0.16 for each prompt alone and 0.39 for p staying.")
#: Why the propagated forecast misses its target, where it does (filled from the committed run).
PROPAGATED_GAP = ("Measured (forecast/measurements.jsonl): propagated, the mean signed logit error is +0.3 at step "
                  "10 and -0.4 at step 100 (frozen: +1.0 to +1.3 from step 20), mean |p error| 0.03; the remaining "
                  "error is the fast early rise (about 3 logit in 20 steps, 0.75 logit per 5-step segment) and the "
                  "saturated prompts, where a small p error is a large logit one. Adam's v and the diffusion stay "
                  "those of step 0.")
#: Why the probe costs more than its target fraction of a 100-step SmolLM2 run.
PROBE_COST_GAP = ("Measured: 591 and 386 s of probe against 528 and 502 s for the 100-step runs (about 5 s a "
                  "step). The probe draws one training step's stochastic gradient per batch (16), the exact p and "
                  "its gradient per prompt (16, every tokenisation of the answer enumerated) and two exact-p passes "
                  "over all prompts per kept gradient (8, the diffusion): more work than 100 steps of 4 prompts; "
                  "fewer batches bias Adam's preconditioner (forecast.DEFAULT_BATCHES), so the 10% target needs "
                  "runs of thousands of steps or a cheaper diffusion.")


def smollm2_claims(folder: Path = SMOLLM2_RESULTS) -> list[Claim]:
    """Claims on the committed SmolLM2-135M-Instruct measurements (none when the folder is absent):
    the projected identity with its power, the coupled one-step prediction against the diagonal
    one at two step sizes, the coupled trajectory model, and (from the ``first-order`` and
    ``forecast`` sub-folders, ``validate --only``) first order on held-out prompts and the AdamW
    forecast from step 0 with its probe's cost.

    They re-read a committed file rather than recompute (a SmolLM2 run takes hours on a CPU), so
    each has kind ``"stored"``: shown with its verdict, not counted among the claims that can fail
    (:func:`rlvrlens.paper_repro.claims.summary`). The mean measured/predicted ratio is judged
    with its standard error (:func:`rlvrlens.paper_repro.claims.estimated`).

    Parameters
    ----------
    folder : path
        Holds ``measurements.jsonl`` of ``rlvrlens validate --preset smollm2-cpu``.

    Returns
    -------
    list of Claim
    """
    from rlvrlens.validation.verdicts import COUPLED_RMS_TARGET, IDENTITY_Z, ONE_STEP_Z

    records, where = _stored(folder)
    if not records:
        return []

    def of(kind: str) -> list[dict]:
        return [r for r in records if r["experiment"] == kind]

    G = max(r["groups"] for r in of("expected_step_projected"))
    ident = [r for r in of("expected_step_projected") if r["groups"] == G]
    best = max(r["p"] * (1 - r["p"]) for r in ident)  # the prompt nearest p = 1/2 has the most power
    sharp = [r for r in ident if r["p"] * (1 - r["p"]) == best]
    one = of("coupling_one_step")
    small = min(r["lr"] for r in one)
    traj = of("coupling_trajectory")

    def mean_ratio() -> tuple[float, float]:
        """Mean of measured/predicted over the prompts at the smaller step, with its standard error
        (each prompt's ratio has the standard error measured_se/|predicted|; prompts independent)."""
        at = [r for r in one if r["lr"] == small]
        rel_se = np.array([r["measured_se"] / abs(r["predicted"]) for r in at])
        return float(np.mean([r["ratio"] for r in at])), float(np.sqrt(np.sum(rel_se ** 2)) / len(at))

    claims = [
        at_most(f"SmolLM2-135M-Instruct (all parameters): the sampled update projected on grad p equals "
                f"h'_M(p)|grad p| ({len({r['scheme'] for r in ident})} schemes, {len({r['prompt'] for r in ident})} "
                f"prompts, G = {G} groups of M = {ident[0]['M']}): worst |z|",
                lambda: max(abs(r["z_projected"]) for r in ident), bound=IDENTITY_Z,
                source=f"Davis & Recht (2025), Theorem 1; {where}", kind="stored",
                explanation="A wrong h'_M (another scheme's weights, a missing 1/M) shifts every z by the relative "
                            "error over its power (next row)."),
        at_most(f"...with power at p = {sharp[0]['p']:.2f}: the largest relative error in h' the test could miss "
                "(worst scheme)", lambda: max(r["detectable_rel_error"] for r in sharp), bound=0.1,
                source=f"issue 14 (power of the identity test); {where}", kind="stored"),
        at_most(f"SmolLM2, one SGD step of the trainer over {len({r['prompt'] for r in one})} prompts: measured mean "
                "Delta p against the coupled kernel prediction (lr/N) K h'(p), two step sizes: worst |z|",
                lambda: max(abs(r["z"]) for r in one), bound=ONE_STEP_Z, source=f"THEORY.md §4 (coupling); {where}",
                kind="stored"),
        at_least("...and each prompt's own (diagonal-K) prediction is rejected: smallest |z| of the diagonal model",
                 lambda: min(abs(r["z_diagonal"]) for r in one), bound=ONE_STEP_Z,
                 source=f"THEORY.md §4 (coupling); {where}", kind="stored"),
        estimated("...the first-order prediction is the limit: at the smaller step the mean measured/predicted ratio "
                  "is within 3% of 1 (judged on mean ± 1.96 se: each prompt's ratio has a 5-12% standard error)",
                  mean_ratio, expected=1.0, tolerance=0.03,
                  source=f"first-order expansion (the larger step's excess is second order); {where}", kind="stored",
                  explanation="The 3% tolerance is finer than the noise of 8 prompts can resolve (half-width 1.96 se "
                              "≈ 5%): the verdict is INCONCLUSIVE until more repeats shrink the standard error, "
                              "whatever the mean."),
    ]
    if traj:
        t = traj[0]
        claims.append(at_most(
            f"SmolLM2, {t['steps']} SGD steps on {t['prompts']} prompts: the coupled kernel model's logit RMS "
            f"(K diagonal: {t['logit_rms_diagonal']:.3f}; uncoupled flow: {t['logit_rms_uncoupled']:.3f})",
            lambda: t["logit_rms_coupled"], bound=COUPLED_RMS_TARGET, source=f"issue 14 target; {where}",
            kind="stored"))
    return (claims + _held_out_claims(folder / "first-order") + _sampled_first_order_claims(folder / "first-order-sampled")
            + _forecast_claims(folder / "forecast"))


def _stored(folder: Path) -> tuple[list[dict], str]:
    """The records of ``folder/measurements.jsonl`` (none when absent) and the claims' source note."""
    raw = folder / "measurements.jsonl"
    name = raw.relative_to(SMOLLM2_RESULTS.parent) if raw.is_relative_to(SMOLLM2_RESULTS.parent) else raw
    return (read_jsonl(raw) if raw.exists() else []), f"stored: re-read from the committed {name} (see NOTE.md), not recomputed"


def _held_out_claims(folder: Path) -> list[Claim]:
    """``validate --only first-order``: on prompts of other reasoning-gym tasks, one step's measured
    over predicted change of p, extrapolated to a zero step, within 3 standard errors of 1."""
    from rlvrlens.validation.verdicts import FIRST_ORDER_Z

    records, where = _stored(folder)
    return [at_most(f"SmolLM2, held-out prompts ({r['family']}, {r['prompts']} prompts, {r['repeats']} repeats at "
                    f"{len(r['targets'])} step sizes): measured/predicted change of p extrapolated to a zero step, "
                    f"{r['ratio']:.3f} ± {r['ratio_se']:.3f}: |z| against 1",
                    lambda r=r: abs(r["ratio"] - 1) / r["ratio_se"], bound=FIRST_ORDER_Z,
                    source=f"issue 21 item 1 (first order on prompts not used in development); {where}", kind="stored",
                    explanation="A missing factor in the step (the 1/M or 1/N of the loss, a wrong h'_M, the "
                                "prediction's lr) moves the ratio by that factor at every step size.")
            for r in records if r["experiment"] == "first_order_limit"]


#: The held-out deficit the issue reported (0.93 +- 0.02 over 48 repeats); the sampled factor settles it
#: when it lies this many of its standard errors above it.
ISSUE_DEFICIT = 0.93


def _sampled_first_order_claims(folder: Path) -> list[Claim]:
    """``validate --only first-order-sampled``: per held-out family, the sampled common factor within 3
    standard errors of 1, the issue's 0.93 more than 3 standard errors below it, and no completion on
    which the verifier and the enumerated accepted set disagree."""
    from rlvrlens.validation.verdicts import FIRST_ORDER_Z

    records, where = _stored(folder)
    claims = []
    for r in (r for r in records if r["experiment"] == "first_order_sampled"):
        what = (f"SmolLM2, held-out prompts ({r['family']}, {r['prompts']} prompts x {r['groups']} groups of M = "
                f"{r['M']}, no step): the common factor of the coupled first-order prediction, "
                f"{r['ratio']:.3f} ± {r['ratio_se']:.3f}")
        source = f"issue 21 item 1 (is the held-out deficit real?); {where}"
        claims += [
            at_most(f"{what}: |z| against 1", lambda r=r: abs(r["ratio"] - 1) / r["ratio_se"], bound=FIRST_ORDER_Z,
                    source=source, kind="stored",
                    explanation="A factor in the expected update (the sampler not drawing from pi, a verifier that "
                                "rewards other completions than the exact p sums, a wrong h'_M) moves it."),
            at_least(f"...the issue's deficit {ISSUE_DEFICIT} rejected: standard errors between it and the factor",
                     lambda r=r: (r["ratio"] - ISSUE_DEFICIT) / r["ratio_se"], bound=FIRST_ORDER_Z, source=source,
                     kind="stored"),
            at_most(f"...completions on which the verifier and the enumerated accepted set disagree (of "
                    f"{r['completions']})", lambda r=r: float(r["mismatches"]), bound=0.0, source=source, kind="stored"),
        ]
    return claims


def _forecast_claims(folder: Path) -> list[Claim]:
    """``validate --only forecast``: each AdamW run forecast from step 0 within the logit RMS target, and
    the probe's cost within its fraction of the run."""
    from rlvrlens.validation.verdicts import PROBE_COST_FRACTION

    records, where = _stored(folder)
    runs = {r["run"]: r for r in records if r["experiment"] == "forecast_run"}
    claims = []
    for name, r in runs.items():
        claims.append(at_most(
            f"SmolLM2, {name} ({r['optim']} lr {r['learning_rate']:.2g}, beta {r['beta']:g}, {r['prompts']} prompts, "
            f"{r['total_steps']} steps) forecast from step 0: logit RMS over the run (nowcast "
            f"{r['logit_rms_nowcast']:.2f}; K diagonal {r['logit_rms_diagonal']:.2f}; p stays {r['logit_rms_naive']:.2f}; "
            f"within the target up to step {r['horizon']})",
            lambda r=r: r["logit_rms_forecast"], bound=r["target"], source=f"issue 21 target; {where}",
            kind="stored", explanation=FORECAST_GAP))
        if "logit_rms_propagated" in r:
            claims.append(at_most(
                f"...{name}: the forecast propagated along its own parameter path (p re-measured every "
                f"{r['propagate_every']} steps, nothing read from the run; within the target up to step "
                f"{r['horizon_propagated']})", lambda r=r: r["logit_rms_propagated"], bound=r["target"],
                source=f"issue 21 target; {where}", kind="stored", explanation=PROPAGATED_GAP))
        claims.append(at_most(f"...{name}: the probe's seconds over the run's ({r['probe_seconds']:.0f} s against "
                              f"{r['run_seconds']:.0f} s)", lambda r=r: r["probe_seconds"] / r["run_seconds"],
                              bound=PROBE_COST_FRACTION, source=f"issue 21 target; {where}", kind="stored",
                              explanation=PROBE_COST_GAP))
    return claims


#: Experiments of the verdict table that :func:`run` states as claims of their own, with the table's
#: thresholds and over all their rows (every other experiment's rows become :func:`row_claims`).
COVERED_EXPERIMENTS = frozenset({
    "1. expected step", "2. relative speed", "3. fixed points (tabular)", "3c. small beta: the horizon",
    "4. flow, not map", "5. coupling, one step", "5a'. coupling, one step with the KL", "5. coupling, trajectory",
    "6. fixed points (transformer)"})
#: Estimator variants of experiment "3. estimator" that have claims of their own.
COVERED_VARIANTS = ("k3 KL", "k1 KL")

#: What is known about the departures of an experiment, cited by its row claim (THEORY.md §4 and the
#: validation experiments that explain them).
ROW_EXPLANATIONS = {
    "3. estimator": "Each variant is judged against its own estimator's stationary point (k2/exact: KL(pi||pi_ref); "
                    "k3: KL(pi_ref||pi); k1: none), THEORY.md §4; a variant with a gap is a measured departure.",
    "4. trajectories (tabular)": "The exact KL-regularised step is the success map step for step (a consistency "
                                 "check); SGD against the mean-field ODE of the softmax logits with no fitted "
                                 "constant, THEORY.md §4.",
    "6b. fixed points (sampled KL)": "Sampled KL estimators on the transformer: k2 of the sequence should reach the "
                                     "KL(pi||pi_ref) point and k3 the KL(pi_ref||pi) one (THEORY.md §4); the "
                                     "stationary p is the mean of the last evaluations, so noise near p = 1 is large.",
    "6c. joint stationary points": "With parameters shared across prompts the joint stationary point is where the "
                                   "summed gradient vanishes, not each prompt's own (THEORY.md §4, coupling).",
    "7. first order": "A factor at a finite step may differ from 1 by the second-order term (a 'gap' there); the "
                      "zero-step extrapolation row is the test of the first-order prediction itself.",
    "8. forecast from step 0": "The forecast freezes the kernel of step 0; its horizon is where the kernel has "
                               "moved (the nowcast, refreshed on the run, shows how much of the error that is).",
}


def _row_covered(row: dict) -> bool:
    if row["experiment"] in COVERED_EXPERIMENTS:
        return True
    return row["experiment"] == "3. estimator" and str(row["case"]).startswith(COVERED_VARIANTS)


def row_claims(rows: list[dict], covered=_row_covered) -> list[Claim]:
    """One claim per experiment of the validation's verdict table that has no claim of its own.

    The claim is "every row of the experiment agrees with its prediction"; it is measured as the
    number of rows whose verdict is ``gap`` or ``DISAGREES`` and FAILS when there is one. Its
    explanation lists those rows (case and gap) and what is known about them
    (:data:`ROW_EXPLANATIONS`). When no row departs but some are ``inconclusive`` (the noise
    decides), the claim is INCONCLUSIVE (its standard error is marked not estimable). So every gap
    row of the report is a claim with its verdict: here, or in one of :func:`run`'s own claims.

    Parameters
    ----------
    rows : list of dict
        Verdict rows ``{experiment, case, prediction, measurement, gap, verdict}``
        (:mod:`rlvrlens.validation.verdicts`).
    covered : callable
        ``row -> bool``: rows already stated by a claim of their own (default: the experiments of
        :data:`COVERED_EXPERIMENTS` and the variants :data:`COVERED_VARIANTS`).

    Returns
    -------
    list of Claim

    Examples
    --------
    >>> rows = [{"experiment": "9. new", "case": "a", "gap": "logit 0.4", "verdict": "gap"},
    ...         {"experiment": "9. new", "case": "b", "gap": "logit 0.01", "verdict": "agrees"}]
    >>> [(c.verdict, c.measured) for c in row_claims(rows)]
    [('FAIL', 1.0)]
    """
    import math

    by_experiment: dict[str, list[dict]] = {}
    for r in rows:
        if not covered(r):
            by_experiment.setdefault(r["experiment"], []).append(r)
    out = []
    for name, rs in by_experiment.items():
        bad = [r for r in rs if r["verdict"] in ("gap", "DISAGREES")]
        unsure = [r for r in rs if r["verdict"] == "inconclusive"]
        listed = "; ".join(f"{r['case']}: {r['verdict']} ({r['gap']})" for r in bad[:8])
        more = f"; and {len(bad) - 8} more" if len(bad) > 8 else ""
        why = " ".join(x for x in (
            f"Rows with a gap: {listed}{more}." if bad else "",
            f"{len(unsure)} row(s) inconclusive (the noise decides)." if unsure else "",
            ROW_EXPLANATIONS.get(name, "No experiment explains a departure here yet.") if bad or unsure else "")
            if x)
        out.append(Claim(f"Validation '{name}': every one of its {len(rs)} rows agrees with its prediction "
                         "(threshold of the verdict table): rows with a gap or DISAGREES",
                         float(len(bad)), 0.0, 0.0, "at_most",
                         "rlvrlens.validation.verdicts (the report's verdict table)",
                         noise=math.nan if (unsure and not bad) else 0.0, explanation=why))
    return out


def fixed_point_claims(fp: list[dict], horizon: list[dict]) -> list[Claim]:
    """Tabular fixed points against the flow target over every ``beta`` measured, with the small
    ``beta`` rows as a claim of their own whose explanation is experiment "3c" (the horizon).

    Parameters
    ----------
    fp : list of dict
        ``fixed_points`` records of :func:`rlvrlens.validation.tabular.fixed_points_vs_beta`.
    horizon : list of dict
        ``small_beta_horizon`` records of :func:`rlvrlens.validation.tabular.small_beta_horizon`
        (empty when that experiment did not run).

    Returns
    -------
    list of Claim
        ``beta >= 1`` (the flow reaches its target within the run), ``beta < 1`` (it need not: FAIL
        when it does not, explained by the horizon) and, with ``horizon``, the claim that SGD there
        follows the mean-field ODE at the same step.
    """
    from rlvrlens.validation.verdicts import FIXED_POINT_LOGIT_TOL

    src = "Mroueh (2025); THEORY.md §2 (every scheme)"
    wrong = ("A wrong map (h'_M of another scheme, beta applied twice, the KL's direction reversed) moves the flow "
             "target by a logit of order 1 at these beta.")
    large = [r for r in fp if r["beta"] >= 1.0]
    small = [r for r in fp if r["beta"] < 1.0]
    out = []
    if large:
        out.append(at_most("Fixed points vs beta (exact KL, beta >= 1): max |logit measured - logit flow target| over "
                           "schemes and p_ref", lambda: max(abs(r["logit_gap"]) for r in large),
                           bound=FIXED_POINT_LOGIT_TOL, source=src, explanation=wrong))
    if small:
        betas = ", ".join(f"{b:g}" for b in sorted({r["beta"] for r in small}))
        if horizon:
            ode = max(abs(r["logit_gap_ode"]) for r in horizon)
            left = [abs(r["logit_gap_stationary"]) for r in horizon]
            why = (f"Explained by experiment 3c (small beta: the horizon): at beta = {horizon[0]['beta']:g} SGD "
                   f"follows the mean-field ODE (max |logit gap| to it {ode:.2f} after {horizon[0]['steps']} "
                   f"steps) but the stationary point lies logit {min(left):.1f} to {max(left):.1f} further: near "
                   "p = 1 the logit moves at a speed proportional to p(1-p), so the flow has not arrived. "
                   "The limit is right; the run is too short to show it.")
        else:
            why = ("Experiment 3c (small beta: the horizon) did not run at this size; it shows that at beta = 0.2 "
                   "SGD follows the mean-field ODE but the flow needs thousands of steps to reach the stationary "
                   "point near p = 1.")
        out.append(at_most(f"Fixed points vs beta (exact KL, beta = {betas} < 1): max |logit measured - logit flow "
                           "target| over schemes and p_ref",
                           lambda: max(abs(r["logit_gap"]) for r in small), bound=FIXED_POINT_LOGIT_TOL, source=src,
                           explanation=why))
    if horizon:
        out.append(at_most(
            f"Small beta ({horizon[0]['beta']:g}): SGD with sampled groups and the exact KL follows the mean-field ODE "
            f"of the softmax at the same step ({horizon[0]['steps']} steps): max |logit measured - logit ODE| "
            "(twice the fixed-point tolerance: sampling noise near p = 1)",
            lambda: max(abs(r["logit_gap_ode"]) for r in horizon), bound=2 * FIXED_POINT_LOGIT_TOL,
            source="THEORY.md §4 (flow, not map); rlvrlens.validation.tabular.small_beta_horizon",
            explanation="A wrong flow (a missing p(1-p) factor, the map's iterates instead of the ODE) would miss the "
                        "measured run by several logits over thousands of steps."))
    return out


def trajectory_claims(traj: list[dict]) -> list[Claim]:
    """The coupled kernel model against every measured trajectory run (SGD, the one-prompt control,
    Adam), with the verdict table's thresholds: the issue-14 target for SGD, twice the fixed-point
    tolerance otherwise.

    Parameters
    ----------
    traj : list of dict
        ``coupling_trajectory`` records (one per run and prompt; the run's RMS is on each).

    Returns
    -------
    list of Claim
        One per run.
    """
    from rlvrlens.validation.verdicts import COUPLED_RMS_TARGET, FIXED_POINT_LOGIT_TOL

    out, seen = [], set()
    for r in traj:
        if r["run"] in seen:
            continue
        seen.add(r["run"])
        sgd = r["optimizer"] == "sgd"
        limit = COUPLED_RMS_TARGET if sgd else 2 * FIXED_POINT_LOGIT_TOL
        why = ("" if sgd else
               f"Open: no experiment explains this yet. With Adam, K = G P G^T uses the optimiser's preconditioner at "
               f"each refresh (every {r['refresh']} step(s)), but Adam's step divides by a running RMS of the "
               "gradients, so it is not linear in the gradient and the first-order kernel model is at best a local "
               f"description; the K-diagonal model's RMS is {r['logit_rms_diagonal']:.3f}, the uncoupled flow's "
               f"{r['logit_rms_uncoupled']:.3f}.")
        out.append(at_most(
            f"Coupled kernel model over {r['steps']} {r['optimizer']} steps, run '{r['run']}' ({r['prompts']} prompt(s), "
            f"K refreshed every {r['refresh']}): logit RMS (K diagonal: {r['logit_rms_diagonal']:.3f}; uncoupled flow: "
            f"{r['logit_rms_uncoupled']:.3f})", lambda r=r: r["logit_rms_coupled"], bound=limit,
            source=("issue 14 target (0.99 before, with a fitted map calibration)" if sgd else
                    "THEORY.md §4 (coupling, P the optimiser's preconditioner); the verdict table's threshold"),
            explanation=why))
    return out


def _size_name() -> str:
    return os.environ.get("RLVRLENS_VALIDATION_PRESET", "demo")


def claims() -> list[Claim]:
    """Fast claims: sampled-gradient training with the exact KL settles at the flow target; SGD follows
    the mean-field ODE with no fitted constant; where Mroueh's map has a 2-cycle, small-step training
    converges to its fixed point. (The exact KL-regularised step reproducing the map is a
    consistency check: the step is the map's closed form.)"""
    from rlvrlens.validation.sizes import get_size
    from rlvrlens.validation.tabular import fixed_points_vs_beta, trajectories, two_cycle_training

    tiny = get_size("tiny", fp_schemes=("grpo",), betas=(2.0, 8.0), ablations=())
    traj = trajectories(tiny)
    cycle = two_cycle_training(tiny)
    return [
        at_most("Consistency check: the exact KL-regularised step of a tabular policy is one step of the success "
                "map: logit RMS between the measured trajectory and the iteration (GRPO, M = 4, beta = 1)",
                lambda: max(r["logit_rms"] for r in traj if r["source"] == "tabular-exact"),
                bound=1e-8, source="THEORY.md §2 (derived: logit p_n = logit p_ref + h'_M(p_{n-1})/beta)",
                kind="consistency"),
        at_most("SGD with sampled groups and the exact KL follows the mean-field ODE of the softmax logits with no "
                "fitted constant: logit RMS (GRPO, M = 4, beta = 1, lr 0.5)",
                lambda: max(r["logit_rms"] for r in traj if r["source"] == "tabular-sgd"), bound=0.15,
                source="THEORY.md §4 (flow, not map)"),
        at_most("Sampled groups + gradient steps + exact KL settle at the predicted stationary point: max |logit "
                "gap| (GRPO, M = 4, beta = 2 and 8 for speed; beta < 1, where a run of this length has not arrived, "
                "is a claim of the full run that fails and is explained by experiment 3c)",
                lambda: max(abs(r["logit_gap"]) for r in fixed_points_vs_beta(tiny)), bound=0.15,
                source="Mroueh (2025) §4, generalised in THEORY.md §2"),
        at_most(f"Flow, not map: where Mroueh's population map has a 2-cycle ({cycle['cycle'][0]:.4f} <-> "
                f"{cycle['cycle'][-1]:.4f} at beta = {cycle['beta']:g}, p_ref = {cycle['p_ref']:g}), small-step "
                f"training converges to its fixed point {cycle['fixed_point']:.4f} (map slope "
                f"{cycle['map_slope']:.2f} < -1): |logit gap|",
                lambda: abs(cycle["logit_gap"]), bound=0.01, source="THEORY.md §4; Mroueh (2025) map"),
        at_least("...and not at the cycle's mean: |logit(cycle mean) - logit(measured)|",
                 lambda: abs(float(np.log(cycle["cycle_mean"] / (1 - cycle["cycle_mean"])))
                             - float(np.log(cycle["measured"] / (1 - cycle["measured"])))), bound=1.0,
                 source="THEORY.md §4"),
    ]


def run(out_dir: str | Path) -> Reproduction:
    """Run :func:`rlvrlens.validation.runner.run_validation` and turn its verdicts into claims."""
    import json

    from rlvrlens.validation.runner import run_validation
    from rlvrlens.validation.sizes import get_size
    from rlvrlens.validation.verdicts import (
        EXPECTED_STEP_CLT_FACTOR, FIXED_POINT_LOGIT_TOL, IDENTITY_Z, ONE_STEP_Z, SPEED_TOLERANCE,
    )

    out = Path(out_dir)
    size = get_size(_size_name())
    verdicts = run_validation(size, out, log=lambda msg: None)
    records = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]

    def of(kind: str) -> list[dict]:
        return [r for r in records if r["experiment"] == kind]

    G = max(r["groups"] for r in of("expected_step"))
    exp1 = [r for r in of("expected_step") if r["groups"] == G]
    fp = of("fixed_points")
    ablation = of("fixed_point_ablation")
    rep = Reproduction(KEY, f"{TITLE} ({size.name} preset)", REFERENCE)
    rep.claims += [
        at_most(f"Expected step = h'_M(p) grad p on a tiny transformer, statistic projected on grad p (7 schemes, "
                f"G = {G} groups): worst |z|", lambda: max(abs(r["z_projected"]) for r in exp1), bound=IDENTITY_Z,
                source="Davis & Recht (2025), Theorem 1"),
        at_most(f"...with power: the largest relative error in h' that the projected test at G = {G} could miss "
                "(worst prompt and scheme)", lambda: max(r["detectable_rel_error"] for r in exp1), bound=0.25,
                source="our measurement (issue 14: power of the identity test)"),
        at_most(f"...and the full vector within {EXPECTED_STEP_CLT_FACTOR:g} CLT scales (worst)",
                lambda: max(r["rel_error"] / r["clt_rel_error"] for r in exp1), bound=EXPECTED_STEP_CLT_FACTOR,
                source="Davis & Recht (2025), Theorem 1"),
        at_most("Relative speed at equal p: one small step changes p in the ratio h'_A(p)/h'_REINFORCE(p): "
                "worst |measured/predicted - 1|",
                lambda: max(abs(r["measured_ratio"] / r["predicted_ratio"] - 1) for r in of("relative_speed")),
                bound=SPEED_TOLERANCE, source="THEORY.md §1 (the step is h'_M(p) grad p)"),
    ]
    rep.claims += fixed_point_claims(fp, of("small_beta_horizon"))
    k3 = [r for r in ablation if r["variant"] == "k3 KL"]
    if k3:
        rep.claims += [
            at_most("The k3 estimator as a loss term implements KL(pi_ref||pi) (the forward KL): max |logit gap| to "
                    "p(1-p) h'_M(p) = beta (p - p_ref)", lambda: max(abs(r["logit_gap"]) for r in k3),
                    bound=FIXED_POINT_LOGIT_TOL, source="THEORY.md §4 (k3: grad KL(pi_ref||pi))"),
            at_least("...where the KL(pi||pi_ref) map's point is off: max |logit gap| to that point",
                     lambda: max(abs(r["logit_gap_pi_ref"]) for r in k3), bound=2 * FIXED_POINT_LOGIT_TOL,
                     source="THEORY.md §4"),
        ]
    k1 = [r for r in ablation if r["variant"] == "k1 KL"]
    if k1:
        rep.claims.append(at_least(
            "The k1 estimator as a loss term has no penalty in expectation, so p keeps rising past the "
            "KL(pi||pi_ref) point: min logit gap to it", lambda: min(r["logit_gap_pi_ref"] for r in k1), bound=0.5,
            source="THEORY.md §4 (k1: E[grad log pi] = 0)"))
    cyc = of("two_cycle")[0]
    rep.claims.append(at_most(
        f"Flow, not map: Mroueh's map cycles at beta = {cyc['beta']:g}, p_ref = {cyc['p_ref']:g}; small-step "
        f"training reaches its fixed point {cyc['fixed_point']:.4f}: |logit gap|", lambda: abs(cyc["logit_gap"]),
        bound=0.01, source="THEORY.md §4"))
    one = [r for r in of("coupling_one_step") if r["beta"] == 0]
    rep.claims.append(at_most(
        f"Coupling, one SGD step on the tiny transformer ({len(one)} prompts): measured mean Delta p against "
        "(lr/N) sum_y K_xy h'(p_y): worst |z|", lambda: max(abs(r["z"]) for r in one), bound=ONE_STEP_Z,
        source="THEORY.md §4 (coupling)"))
    one_kl = [r for r in of("coupling_one_step") if r["beta"] > 0]
    if one_kl:
        rep.claims += [
            at_most(f"...with k2 of the sequence at beta = {one_kl[0]['beta']:g}, away from pi_ref: against "
                    "(lr/N) sum_y [K_xy h'(p_y) - beta <grad p_x, grad KL_y>] (exact sequence KL): worst |z|",
                    lambda: max(abs(r["z"]) for r in one_kl), bound=ONE_STEP_Z, source="THEORY.md §4 (coupling)"),
            at_least("...and the same with each prompt's own terms only (K and the KL projection diagonal) is "
                     "rejected: largest |z| of the diagonal model", lambda: max(abs(r["z_diagonal"]) for r in one_kl),
                     bound=ONE_STEP_Z, source="THEORY.md §4 (coupling)"),
        ]
    rep.claims += trajectory_claims(of("coupling_trajectory"))
    lmfp = [r for r in of("lm_fixed_points") if r["part"] == "sweep"]
    if lmfp:
        rep.claims.append(at_most(
            f"Transformer fixed points with the exact sequence KL after {lmfp[0]['steps']} Adam steps: max |logit "
            "gap| to each prompt's flow target", lambda: max(abs(r["logit_gap"]) for r in lmfp),
            bound=FIXED_POINT_LOGIT_TOL, source="THEORY.md §4"))
    for part in sorted({r["part"] for r in of("lm_fixed_points")} - {"sweep", "beta2"}):
        rs = [r for r in of("lm_fixed_points") if r["part"] == part]  # e.g. the KL(pi_ref||pi) run
        rep.claims.append(at_most(
            f"Transformer fixed points with the KL penalty {rs[0]['kl']!r} ({rs[0]['scheme']}, beta = {rs[0]['beta']:g}) "
            f"after {rs[0]['steps']} Adam steps: max |logit gap| to each prompt's flow target for that penalty",
            lambda rs=rs: max(abs(r["logit_gap"]) for r in rs), bound=FIXED_POINT_LOGIT_TOL,
            source="THEORY.md §4 (stationary points per KL direction)"))
    b2 = {}
    for r in of("lm_fixed_points"):
        if r["part"] == "beta2":
            b2.setdefault(r["adam_beta2"], []).append(r)
    if len(b2) > 1:
        low, high = min(b2), max(b2)
        rep.claims += [
            at_most(f"Near p = 1 (beta = {b2[low][0]['beta']:g}, p* up to {max(r['predicted'] for r in b2[low]):.4f}), "
                    f"Adam with beta2 = {low:g} reaches the flow targets in {b2[low][0]['steps']} steps: max |logit gap|",
                    lambda: max(abs(r["logit_gap"]) for r in b2[low]), bound=FIXED_POINT_LOGIT_TOL,
                    source="our measurement (issue 14.4: the optimiser's influence)"),
            at_least(f"...while beta2 = {high:g} (Adam's default) is still short of them after as many steps: "
                     "max |logit gap|", lambda: max(abs(r["logit_gap"]) for r in b2[high]),
                     bound=FIXED_POINT_LOGIT_TOL, source="our measurement (issue 14.4)"),
        ]
    rep.claims += row_claims(verdicts)
    committed = smollm2_claims()
    rep.claims += committed
    captions = {name: caption for name, caption in (
        ("expected_step", "Relative error of the Monte-Carlo mean update against h'_M(p) grad p (solid) and the CLT "
                          "error scale (dashed), and its cosine, as the number of groups grows."),
        ("relative_speed", "One small step per scheme from the same parameters: change of p relative to "
                           "REINFORCE's (measured exactly) against h'_A(p)/h'_REINFORCE(p)."),
        ("fixed_points", "Stationary success of KL-regularised training (tabular policy, sampled groups) against "
                         "each scheme's flow target; right: the gap by inner steps, KL estimator and clipping, "
                         "against the estimator's own prediction and against the KL(pi||pi_ref) map's."),
        ("trajectories", "Tabular trajectories: the exact step follows the map, SGD the mean-field ODE; right: in "
                         "a 2-cycle regime of Mroueh's map small steps settle at the fixed point."),
        ("coupling_one_step", "One SGD step on the tiny transformer: measured mean change of p per prompt "
                              "against the coupled and the diagonal kernel prediction."),
        ("coupling", "Predicted against measured per-prompt trajectories on the tiny transformer (SGD, one-prompt "
                     "control, Adam): coupled kernel model, K diagonal, uncoupled flow."),
        ("lm_fixed_points", "Fixed points on the tiny transformer with the exact sequence KL, against each "
                            "prompt's flow target."))}
    for name, caption in captions.items():
        rep.figures.append(FigureFile(name, caption, (out / f"{name}.png", out / f"{name}.pdf")))
    if committed:
        for sub, name, caption in (
                ("", "identity", "SmolLM2-135M-Instruct: the sampled update projected on grad p, measured over "
                                 "predicted, per scheme and prompt (bars: 3 standard errors)."),
                ("", "coupling_one_step", "SmolLM2: one SGD step over 8 prompts, measured against the coupled and "
                                          "the diagonal kernel prediction (two step sizes)."),
                ("", "coupling", "SmolLM2: predicted against measured per-prompt trajectories (coupled kernel model, "
                                 "K diagonal, uncoupled flow)."),
                ("first-order", "first_order", "SmolLM2 on held-out prompts (two other reasoning-gym tasks): one SGD "
                                               "step at three sizes, measured over predicted change of p, and its "
                                               "zero-step extrapolation."),
                ("first-order-sampled", "first_order_sampled", "SmolLM2 on the same held-out prompts, no step: each "
                                                               "prompt's sampled update (384 groups of 8) on its own "
                                                               "grad p, measured over predicted, and each family's "
                                                               "common factor of the coupled prediction."),
                ("forecast", "forecast_0", "SmolLM2, AdamW: the forecast made before the run against the measured "
                                           "per-prompt success, with the nowcast and the baselines."),
                ("forecast", "forecast_1", "SmolLM2, AdamW with the k2 KL penalty: the forecast made before the run "
                                           "against the measured per-prompt success.")):
            source = SMOLLM2_RESULTS / sub / f"{name}.png"
            if source.exists():
                copy = out / f"smollm2_{name}.png"  # the page's folder holds every figure it shows
                shutil.copyfile(source, copy)
                rep.figures.append(FigureFile(f"smollm2_{name}", f"{caption} Committed measurement "
                                              f"({SMOLLM2_RESULTS.name}/NOTE.md).", (copy,)))
    rep.tables.append(Table("verdicts", "Every prediction, measurement, gap and verdict (also in "
                            "report.md; raw records in measurements.jsonl, in this folder).",
                            ("experiment", "case", "prediction", "measurement", "gap", "verdict"),
                            tuple(tuple(v[k] for k in ("experiment", "case", "prediction", "measurement", "gap",
                                                       "verdict")) for v in verdicts)))
    rep.notes.append(f"Run size {size.name!r}: GPT-2 style model with {size.n_layer} layers of width "
                     f"{size.width}, M = {size.M}. The gpu size (larger model, more prompts and groups) is defined "
                     "for a lent accelerator (RLVRLENS_VALIDATION_PRESET=gpu rlvrlens repro validation); no "
                     "accelerator was available when these numbers were measured.")
    return rep
