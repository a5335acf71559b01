"""What the trainer and the exact-probability tools need of a policy, as ``typing.Protocol`` s.

:class:`Policy` is the interface every policy offers (:class:`~rlvrlens.training.policy.CausalLMPolicy`
and :class:`~rlvrlens.training.policy.TabularPolicy` satisfy it); :class:`ExactKLPolicy` adds the
exact sequence-level KL a small policy can compute by enumeration, and :class:`SavablePolicy` a
``save_pretrained`` folder. The protocols are ``runtime_checkable``, so ``isinstance(policy, Policy)``
checks that the methods exist (not their signatures).

Examples
--------
>>> from rlvrlens.training.policy import TabularPolicy
>>> pol = TabularPolicy(["x"], ["yes", "no"])
>>> isinstance(pol, Policy), isinstance(pol, ExactKLPolicy), isinstance(pol, SavablePolicy)
(True, True, False)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rlvrlens.training.policy import Rollout


@runtime_checkable
class Policy(Protocol):
    """A stochastic policy over completions of text prompts, trainable by gradient.

    ``sample`` draws ``n`` completions per prompt (rows ``i*n .. i*n+n-1`` belong to ``prompts[i]``);
    ``encode`` turns given completions into a rollout for teacher forcing; ``token_logprobs``
    returns ``(logp, entropy)`` of shape ``(B, T)``, differentiable, under the logits divided by
    ``temperature`` (and, for ``top_p < 1``, the nucleus renormalised) so that they are those of
    the distribution ``sample`` drew from with the same settings; ``clone(trainable=False)`` a
    frozen copy (pi_ref) or, with ``trainable=True``, a copy to train; ``to(device)`` moves it;
    ``footprint()`` gives ``(vocabulary, hidden width, layers)`` for the trainer's memory bound;
    ``enable_gradient_checkpointing()`` turns on activation checkpointing (or raises ``ValueError``
    naming why the policy cannot).
    """

    def sample(self, prompts: Sequence[str], n: int = 1, *, generator: "torch.Generator | None" = None,
               temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 8,
               with_grad: bool = False) -> "Rollout": ...

    def encode(self, prompts: Sequence[str], completions: Sequence[str]) -> "Rollout": ...

    def token_logprobs(self, rollout: "Rollout", *, temperature: float = 1.0,
                       top_p: float = 1.0) -> "tuple[torch.Tensor, torch.Tensor]": ...

    def clone(self, trainable: bool = False) -> "Policy": ...

    def parameters(self) -> "Iterator[torch.nn.Parameter]": ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...

    def to(self, device: Any) -> Any: ...

    def footprint(self) -> tuple[int, int, int]: ...

    def enable_gradient_checkpointing(self) -> None: ...


@runtime_checkable
class ExactKLPolicy(Protocol):
    """A policy that computes the KL over whole completions exactly, differentiably, shape
    ``(len(prompts),)``: ``KL(pi(.|x) || pi_ref(.|x))`` for ``direction="pi||ref"`` (used by
    ``kl_estimator="exact"``), ``KL(pi_ref(.|x) || pi(.|x))`` for ``"ref||pi"``."""

    def sequence_kl(self, reference: Any, prompts: Sequence[str], direction: str = "pi||ref") -> "torch.Tensor": ...


@runtime_checkable
class SavablePolicy(Protocol):
    """A policy that writes a folder ``CausalLMPolicy.from_pretrained`` (``--model PATH``) loads."""

    def save_pretrained(self, path: str | Path) -> None: ...
