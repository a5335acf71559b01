"""The vocabulary every layer shares (torch-free, imports nothing else of rlvrlens).

:mod:`~rlvrlens.core.checks` (argument checks that name the parameter), :mod:`~rlvrlens.core.kl`
(KL estimators, levels and their treatments, named by direction), :mod:`~rlvrlens.core.logit`
(logits of probabilities, clipped for comparisons), :mod:`~rlvrlens.core.records` (the run-record
format: file names, JSON lines read and written one way).
"""
