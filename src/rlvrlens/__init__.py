"""rlvrlens: what an RL-with-verifiable-rewards update optimises, where it converges, and whether a
real model agrees.

Floors (imports point downward only; checked by ``tests/test_layers.py``), highest first::

    rlvrlens.cli, rlvrlens.commands     the command line: parse, call one layer function, print/plot
    rlvrlens.paper_repro                one module per paper: figures and claims, the index page
    rlvrlens.validation                 theory against measurement (sizes, runner, verdicts, report)
    rlvrlens.forecast                   probes of a model and the predictions they feed
    rlvrlens.training                   the torch/transformers trainer, policies, tasks, TRL adapter, verl plugin
    rlvrlens.figures                    data in, Figure out (beside training: neither imports the other)
    rlvrlens.explain                    what a configuration optimises; TRL/verl configs; recorded runs
    rlvrlens.dynamics                   success maps, fixed points, cycles (Outcome), stationary points, flows
    rlvrlens.objectives                 weight schemes, h_M, design, presets, schemes named in configs
    rlvrlens.core                       the shared vocabulary: checks, KL estimators and treatments, logits,
                                        the run-record format

torch, transformers, trl and verl are imported only under :mod:`rlvrlens.training`, :mod:`rlvrlens.forecast`
and :mod:`rlvrlens.validation`; ``import rlvrlens``, core, objectives, dynamics, explain and figures
never import them. No module imports another module's private (``_name``) names or reads another
object's private attributes, and nothing outside training sets a trainer's attributes.
"""

__version__ = "0.1.0"
