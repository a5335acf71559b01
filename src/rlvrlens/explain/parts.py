"""What the predictions make of each part of a run's configuration: modelled, approximated (how) or not.

:func:`configuration_parts` goes through a run's configuration, in the trainer's field names (a run's
``config.json``, or :attr:`rlvrlens.explain.run_config.RunSettings.fields` of a TRL or verl config),
and says for each part whether the stationary point ``p*`` (each prompt's own small-step flow,
THEORY.md §4) and the forecast (:mod:`rlvrlens.forecast.forecast`) model it, approximate it or do not.
Imports core only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from rlvrlens.core.kl import DIVERGENCE, ESTIMATOR_TREATMENT

#: The statuses of :class:`Part`.
MODELLED, APPROXIMATED, NOT_MODELLED, NOT_RECORDED = "modelled", "approximated", "not modelled", "not recorded"


@dataclass(frozen=True)
class Part:
    """One part of a run's configuration and what the predictions make of it.

    Attributes
    ----------
    name : str
        ``"optimiser"``, ``"schedule"``, ...
    setting : str
        The run's value(s), or ``"not recorded"``.
    stationary : str
        :data:`MODELLED`, :data:`APPROXIMATED`, :data:`NOT_MODELLED` or :data:`NOT_RECORDED`, for the
        stationary point ``p*`` (each prompt's own small-step flow).
    forecast : str or None
        The same for the forecast (None: no forecast).
    how : str
        What is approximated and how, or why it is not modelled.
    """

    name: str
    setting: str
    stationary: str
    forecast: str | None
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"part": self.name, "setting": self.setting, "stationary": self.stationary,
                "forecast": self.forecast, "how": self.how}


def configuration_parts(fields: Mapping[str, Any] | None, *, p_ref: str, forecast: bool,
                        refused: Mapping[str, str] | None = None) -> tuple[Part, ...]:
    """Every part of a run's configuration against the two predictions (:class:`Part`).

    Parameters
    ----------
    fields : mapping or None
        The run's :class:`~rlvrlens.training.TrainConfig` fields (its ``config.json``, or
        :attr:`RunSettings.fields`); None when the run records none (each part is then "not recorded").
    p_ref : str
        How ``p_ref`` is known: ``"exact"``, or the words of an estimate (``"Wilson 95% interval from
        64 samples"``).
    forecast : bool
        Whether a forecast is compared too.
    refused : mapping, optional
        :attr:`RunSettings.refused`: options with no counterpart, each reported as not modelled.

    Examples
    --------
    >>> parts = configuration_parts({"optim": "adamw", "learning_rate": 1e-6, "lr_scheduler_type": "linear",
    ...                              "steps": 60}, p_ref="exact", forecast=True)
    >>> [(p.name, p.stationary, p.forecast) for p in parts][:2]
    [('optimiser', 'not modelled', 'approximated'), ('schedule', 'not modelled', 'modelled')]
    """
    f = dict(fields or {})
    fc = (lambda status: status) if forecast else (lambda status: None)
    parts: list[Part] = []

    def add(name, setting, stationary, in_forecast, how):
        parts.append(Part(name, setting, stationary, fc(in_forecast), how))

    def missing(name, *keys):
        if any(k not in f for k in keys):
            add(name, NOT_RECORDED, NOT_RECORDED, NOT_RECORDED, "the run does not record it (give --trl-config or "
                "--verl-config)")
            return True
        return False

    if not missing("optimiser", "optim", "learning_rate"):
        adam = f["optim"] != "sgd"
        wd = float(f.get("weight_decay", 0.0))
        setting = f"{f['optim']}, learning_rate {f['learning_rate']:g}" + (
            f", betas ({f.get('adam_beta1', 0.9):g}, {f.get('adam_beta2', 0.999):g})" if adam else "") + (
            f", weight_decay {wd:g}" if wd else "")
        how = ("p*: the optimiser sets how fast a run moves, not where a small-step flow stops; near p = 1 Adam's "
               "memory of large early gradients makes the last steps tiny")
        if wd:
            how += "; weight decay pulls the parameters to 0 and moves the stationary point"
        how += ("; forecast: Adam with v frozen at the probe's E[g^2], its small-signal gain and beta1's lag"
                if adam else "; forecast: SGD to first order in each step")
        add("optimiser", setting, NOT_MODELLED, APPROXIMATED if adam else MODELLED, how)
    if not missing("schedule", "lr_scheduler_type", "steps"):
        kind = f["lr_scheduler_type"]
        setting = f"{kind}, {f['steps']} steps" + (f", warmup_steps {f['warmup_steps']}" if f.get("warmup_steps") else "")
        how = ("p*: the end of an unlimited small-step flow; " + (
            f"a linear decay to 0 at step {f['steps']} stops the run where the schedule ends, possibly short of p*"
            if kind == "linear" else "reached only as the steps grow") + "; forecast: the schedule, exactly")
        add("schedule", setting, NOT_MODELLED, MODELLED, how)
    if not missing("clipping", "max_grad_norm"):
        norm = float(f["max_grad_norm"])
        sgd = f.get("optim") == "sgd"
        add("clipping", f"max_grad_norm {norm:g}" if norm else "none", MODELLED,
            (APPROXIMATED if sgd else NOT_MODELLED) if norm else MODELLED,
            "p*: a positive scale of the whole step does not move a stationary point; forecast: " + (
                "none" if not norm else "the probe's mean clip factor" if sgd else
                "ignored (Adam is invariant to the gradient's scale but for eps)"))
    if not missing("num_iterations", "num_iterations"):
        mu = int(f["num_iterations"])
        status = MODELLED if mu == 1 else NOT_MODELLED
        add("num_iterations", f"mu = {mu}", status, status,
            "on-policy: the clipping never binds at the first step" if mu == 1 else
            f"{mu} clipped epochs per batch: only the on-policy first step is modelled")
    if not missing("KL", "beta"):
        add(*_kl_part(f))
    if not missing("loss aggregation", "loss_aggregation"):
        agg = f["loss_aggregation"]
        exact = agg == "seq-sum-constant"
        add("loss aggregation", agg, MODELLED if exact else APPROXIMATED, MODELLED if exact else APPROXIMATED,
            "a fixed multiple of the theory's estimator" if exact else
            "answers weighted by their length: exact when lengths do not depend on the reward (forecast: the "
            "probe's mean inverse length as the loss's scale)")
    if not missing("sampling", "temperature", "top_p"):
        plain = float(f["temperature"]) == 1 and float(f["top_p"]) == 1
        add("sampling", f"temperature {float(f['temperature']):g}, top_p {float(f['top_p']):g}",
            MODELLED if plain else NOT_MODELLED, MODELLED if plain else NOT_MODELLED,
            "the policy's own distribution, p of the theory" if plain else
            "p of the theory is the policy's own success probability; tempered or truncated sampling is not modelled")
    exact = p_ref == "exact"
    add("p_ref", p_ref, MODELLED if exact else APPROXIMATED, MODELLED,
        "the starting model's exact success" if exact else
        "p* computed at both ends of p_ref's interval (p* is non-decreasing in p_ref), so its interval is carried; "
        "forecast: the probe's exact p")
    add("coupled prompts", "shared parameters", NOT_MODELLED, APPROXIMATED,
        "p*: each prompt's own flow (shared parameters move prompts together, and a prompt can fall while its own "
        "gradient says rise); forecast: to first order, the kernel <grad x_x, P grad x_y> frozen at step 0")
    for option, why in (refused or {}).items():
        add(option, why.split(":")[0], NOT_MODELLED, NOT_MODELLED, why)
    return tuple(parts)


def _kl_part(f: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    beta = float(f["beta"])
    if beta == 0:
        return "KL", "beta 0", MODELLED, MODELLED, "no KL term: p -> 1 wherever h'_M > 0"
    estimator, level = f.get("kl_estimator", "k3"), f.get("kl_level")
    if f.get("kl_in_reward") or estimator == "reward":
        return ("KL", f"beta {beta:g}, in the reward", MODELLED, MODELLED,
                "logit p* = logit p_ref + 1/beta for schemes affine in the rewards (others unresolved)")
    treatment = ESTIMATOR_TREATMENT.get(estimator, "none")
    where = "sequence" if estimator == "exact" else level or "token or sequence: not recorded"
    setting = f"beta {beta:g}, {estimator} per {where}: {DIVERGENCE[treatment]}"
    if estimator in ("k2", "k3") and level != "sequence":
        return ("KL", setting, APPROXIMATED, APPROXIMATED,
                f"{estimator} on each token's log-ratio, summed, is modelled as the sequence's {DIVERGENCE[treatment]}: "
                "exact for one-token answers only (the per-token sum drops the cross terms between tokens)")
    return "KL", setting, MODELLED, MODELLED, f"the gradient of {DIVERGENCE[treatment]} of the sequence"
