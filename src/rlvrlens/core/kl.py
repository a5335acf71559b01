"""The KL vocabulary, in one place: estimators, where they are applied, and what they pull towards.

A KL penalty ``beta * KL`` to a reference policy ``pi_ref`` enters a gradient trainer through an
*estimator* computed from the policy's own samples (Schulman 2020, with ``rho = pi/pi_ref`` of a
sampled sequence or token):

* ``k1 = log rho``; ``k2 = (log rho)^2 / 2``; ``k3 = 1/rho - 1 + log rho``; ``exact``: the KL
  itself, computed by enumeration (a tabular policy, or a transformer's two-token space).

Used as a loss term (the sample held fixed), each estimator's *expected gradient* is the gradient
of a divergence, its **treatment** (THEORY.md §4):

* ``"pi||ref"``: ``grad KL(pi || pi_ref)``: ``exact`` and ``k2`` (exactly, at the sequence level).
  The RL-for-LLM literature and frameworks (TRL, OpenRLHF, verl, the k1/k2/k3 papers) call
  ``KL(pi || pi_ref)``, with the trained policy first, the **reverse** KL (mode-seeking).
* ``"ref||pi"``: ``grad KL(pi_ref || pi)``: ``k3`` as a plain loss term. The field calls
  ``KL(pi_ref || pi)`` the **forward** KL (mass-covering).
* ``"none"``: ``k1`` as a loss term (``E_pi[grad log pi] = 0``: no pull back at all).
* ``"reward"``: the KL subtracted from the reward (REINFORCE++, verl's ``use_kl_in_reward``).

The treatments are named by their direction, written out, so that no reader has to know which
convention "forward" follows; the old names ``"forward"`` and ``"reverse"`` are refused with a
message (:func:`check_treatment`), so an old script never silently gets the other direction.
Imports nothing above :mod:`rlvrlens.core`.

Examples
--------
>>> treatment_of("k3"), treatment_of("k2")
('ref||pi', 'pi||ref')
>>> check_treatment("forward")
Traceback (most recent call last):
...
ValueError: kl='forward' is no longer accepted (it is ambiguous: TRL, OpenRLHF and verl call KL(pi||pi_ref) the reverse KL); use kl='pi||ref' for KL(pi||pi_ref) (exact, k2) or kl='ref||pi' for KL(pi_ref||pi) (k3)
"""

from __future__ import annotations

import numbers

#: Estimators of the KL from the policy's samples (Schulman 2020), used by the trainer per token or per sequence.
SAMPLED_ESTIMATORS = ("k1", "k2", "k3")
#: The trainer's ``kl_estimator`` values: the sampled ones and the exact KL of a small policy.
KL_ESTIMATORS = (*SAMPLED_ESTIMATORS, "exact")
#: What ``explain`` accepts: the trainer's estimators and ``"reward"`` (the KL folded into the reward).
EXPLAIN_ESTIMATORS = ("exact", "k1", "k2", "k3", "reward")
#: Where a sampled estimator is applied: each token's log-ratio, summed (TRL, verl), or the sequence's.
KL_LEVELS = ("token", "sequence")

#: ``grad KL(pi || pi_ref)``: the reverse KL in the field's naming.
PI_REF = "pi||ref"
#: ``grad KL(pi_ref || pi)``: the forward KL in the field's naming.
REF_PI = "ref||pi"
#: The treatments (module docstring).
TREATMENTS = (PI_REF, REF_PI, "none", "reward")
#: The treatments a loss term can have (the KL in the reward is not a loss term).
LOSS_TREATMENTS = (PI_REF, REF_PI, "none")
#: Which treatment each loss-term estimator implements.
ESTIMATOR_TREATMENT = {"exact": PI_REF, "k2": PI_REF, "k3": REF_PI, "k1": "none"}
#: One estimator that behaves as each treatment (``explain`` reports a framework config's KL by it).
TREATMENT_ESTIMATOR = {PI_REF: "exact", REF_PI: "k3", "none": "k1", "reward": "reward"}
#: The divergence of each treatment, written out for the reader.
DIVERGENCE = {PI_REF: "KL(pi||pi_ref)", REF_PI: "KL(pi_ref||pi)", "none": "no penalty",
              "reward": "KL in the reward"}
#: The name the field gives each divergence.
FIELD_NAME = {PI_REF: "the reverse KL", REF_PI: "the forward KL", "none": "no KL", "reward": "the KL in the reward"}

#: Where a small-step trainer with each treatment stops (THEORY.md §4), one line each.
STATIONARY_CONDITION = {
    PI_REF: "KL(pi||pi_ref) (the reverse KL): p* is the success map's first fixed point above p_ref, "
            "logit p* = logit p_ref + h'_M(p*)/beta (never a 2-cycle of the map)",
    REF_PI: "KL(pi_ref||pi) (the forward KL): p* solves p(1-p) h'_M(p) = beta (p - p_ref)",
    "none": "no pull back to pi_ref (E[grad k1] = 0): p -> 1 while h'_M > 0",
    "reward": "the KL folded into the reward: logit p* = logit p_ref + 1/beta for schemes affine in the rewards "
              "(reinforce, rloo, dr_grpo; others unresolved)",
}

_OLD = {"forward", "reverse"}


#: The KL coefficients the dynamics are computed for. Below, ``h'_M / beta`` overflows the float64
#: logits for weights of ordinary size; above, the reward moves ``p`` by less than its rounding
#: (``p* = p_ref`` to 12 digits) and the stationary equations lose their precision.
BETA_RANGE = (1e-12, 1e12)


def check_beta(beta: object, *, name: str = "beta", zero: bool = False) -> float:
    """``beta`` as a float in :data:`BETA_RANGE` (or 0 when ``zero``: no KL term), else a one-line error.

    >>> check_beta(1e308)
    Traceback (most recent call last):
    ...
    ValueError: beta must be in [1e-12, 1e+12] (a KL coefficient the dynamics are computed for), got 1e+308
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {beta!r}")
    value = float(beta)
    if value == 0 and zero:
        return value
    if not BETA_RANGE[0] <= value <= BETA_RANGE[1]:  # NaN included
        raise ValueError(f"{name} must be {'0 or ' if zero else ''}in [{BETA_RANGE[0]:g}, {BETA_RANGE[1]:g}] "
                         f"(a KL coefficient the dynamics are computed for), got {value:g}")
    return value


def check_treatment(kl: object, allowed: tuple[str, ...] = TREATMENTS) -> str:
    """``kl`` if it is one of ``allowed``; a one-line ``ValueError`` otherwise (the old names
    ``"forward"``/``"reverse"`` get a message naming the new ones)."""
    if kl in _OLD:
        raise ValueError(f"kl={kl!r} is no longer accepted (it is ambiguous: TRL, OpenRLHF and verl call "
                         f"KL(pi||pi_ref) the reverse KL); use kl={PI_REF!r} for KL(pi||pi_ref) (exact, k2) or "
                         f"kl={REF_PI!r} for KL(pi_ref||pi) (k3)")
    if kl not in allowed:
        raise ValueError(f"kl must be one of {', '.join(repr(k) for k in allowed)}, got {kl!r}")
    return str(kl)


def check_estimator(estimator: object, allowed: tuple[str, ...] = KL_ESTIMATORS, *,
                    name: str = "kl_estimator") -> str:
    """``estimator`` if it is one of ``allowed``, else a ``ValueError`` naming ``name`` and the choices."""
    if estimator not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {estimator!r}")
    return str(estimator)


def treatment_of(estimator: str) -> str:
    """The treatment of a loss-term estimator (``"reward"`` stays ``"reward"``).

    >>> [treatment_of(e) for e in ("exact", "k1", "k2", "k3", "reward")]
    ['pi||ref', 'none', 'pi||ref', 'ref||pi', 'reward']
    """
    if estimator == "reward":
        return "reward"
    return ESTIMATOR_TREATMENT[check_estimator(estimator)]


def describe(treatment: str) -> str:
    """``"KL(pi||pi_ref), the reverse KL"``-style words for a treatment.

    >>> describe("ref||pi")
    'KL(pi_ref||pi), the forward KL'
    """
    check_treatment(treatment)
    if treatment in (PI_REF, REF_PI):
        return f"{DIVERGENCE[treatment]}, {FIELD_NAME[treatment]}"
    return DIVERGENCE[treatment]
