"""Probes of a model: what is measured of a policy to predict how training moves its prompts.

Every probe reads the model as it is (no update) and returns numpy arrays:

* :func:`success_jacobian`: each prompt's exact success ``p_x`` (teacher forcing over the accepted
  completions) and ``grad_theta p_x`` (autograd), the rows of ``G``;
* :func:`unit_grad_p`: one prompt's ``p``, ``|grad p|`` and the unit direction ``grad p / |grad p|``;
* :func:`directional_scores`: ``<grad log pi(y|x), d>`` of many completions along one direction by
  central differences (the 135M-dimensional score vectors are never stored);
* :func:`kernel`: ``K = G P G^T`` for a diagonal preconditioner ``P`` (the identity for SGD);
* :func:`kl_projection`: ``C[x, y] = <grad p_x, grad D_y>`` for the exact sequence divergence ``D``
  of a two-token completion space (the KL term's share of a step).

The first-order model they feed is :mod:`rlvrlens.forecast.coupled` (THEORY.md §4).
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

from rlvrlens.core.kl import PI_REF
from rlvrlens.training.policy import trainable_parameters
from rlvrlens.training.success import exact_success
from rlvrlens.training.task import Task
from rlvrlens.training.tasks import EnumeratedTask


def _flat(grads, params) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(q)).flatten() for g, q in zip(grads, params)])


def flat_grad(scalar: torch.Tensor, params: Sequence[torch.Tensor], *, retain_graph: bool = False) -> np.ndarray:
    """``grad scalar`` over ``params``, flattened, float64 (zeros for parameters it does not use).

    Parameters
    ----------
    scalar : torch.Tensor
        A scalar in the autograd graph of ``params``.
    params : sequence of torch.Tensor
        The parameters to differentiate with respect to, in the order of the flattened result.
    retain_graph : bool, default False
        Keep the graph for further gradients of the same forward pass.

    Returns
    -------
    ndarray, shape (n_params,)
        The gradients concatenated in ``params`` order, as float64 on the CPU.
    """
    grads = torch.autograd.grad(scalar, list(params), allow_unused=True, retain_graph=retain_graph)
    return _flat(grads, params).double().cpu().numpy()


def success_jacobian(policy, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Exact success of every prompt and its gradient.

    Parameters
    ----------
    policy : Policy
        Its parameters that require grad are differentiated.
    task : Task
        An enumerable task (exact success).

    Returns
    -------
    p : ndarray, shape (N,)
        Exact success probabilities (float64).
    G : ndarray, shape (N, n_params)
        ``G[x] = grad_theta p_x`` in the parameters' precision (float32 for a transformer: 8 prompts
        of a 135M-parameter model are 4.3 GB; :func:`kernel` accumulates in float64).
    """
    params = trainable_parameters(policy)
    dtype = functools.reduce(torch.promote_types, [q.dtype for q in params])
    sizes = [q.numel() for q in params]
    rows = torch.zeros((len(task), sum(sizes)), dtype=dtype)  # filled in place: no 0.5 GB concatenations
    p_all = []
    for x in range(len(task)):  # one prompt's graph at a time: a large model's graphs do not pile up
        p = exact_success(policy, task, [x])[0]
        grads = torch.autograd.grad(p, params, allow_unused=True)
        for g, block in zip(grads, torch.split(rows[x], sizes)):
            if g is not None:
                block.copy_(g.flatten())
        p_all.append(float(p.detach()))
    return np.array(p_all), rows.numpy()


def unit_grad_p(policy, task: Task, i: int) -> tuple[float, float, list[torch.Tensor]]:
    """``(p, |grad p|, grad p / |grad p|)`` of prompt ``i`` (exact, autograd).

    The direction is given as one tensor per trainable parameter.

    Parameters
    ----------
    policy : Policy
        The policy whose trainable parameters are differentiated.
    task : Task
        The task holding the prompt.
    i : int
        Index of the prompt in ``task``.

    Returns
    -------
    p : float
        Exact success probability of prompt ``i``.
    norm : float
        ``|grad p|`` over the trainable parameters.
    direction : list of torch.Tensor
        ``grad p / |grad p|``, one tensor per trainable parameter.

    Raises
    ------
    ValueError
        When ``grad p = 0``.
    """
    params = trainable_parameters(policy)
    p = exact_success(policy, task, [i])[0]
    grads = [g if g is not None else torch.zeros_like(q)
             for g, q in zip(torch.autograd.grad(p, params, allow_unused=True), params)]
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    if norm == 0:
        raise ValueError(f"prompt {i}: grad p is zero (p = {float(p):.3g}); there is no direction to probe")
    return float(p.detach()), norm, [g / norm for g in grads]


@torch.no_grad()
def directional_scores(policy, rollout, direction: Sequence[torch.Tensor], *, eps: float = 1e-3,
                       chunk: int = 32) -> np.ndarray:
    """``<grad_theta log pi(y_r | x_r), direction>`` for every row ``r`` of ``rollout``.

    A central difference of each sequence's log-probability (the sum over its completion tokens)
    along ``direction`` (one tensor per trainable parameter, unit norm for ``eps`` to be a step
    length): ``(log pi_{theta + eps d}(y) - log pi_{theta - eps d}(y)) / (2 eps)``. Error
    ``O(eps^2)`` plus float32 rounding of order ``1e-6 |log pi| / eps``; at ``eps = 1e-3`` on
    SmolLM2 it is within 0.3% of autograd (the runs record the check). Parameters are restored
    exactly (copied back), also when a forward pass fails.

    Examples
    --------
    >>> from rlvrlens.training.policy import CausalLMPolicy
    >>> pol = CausalLMPolicy.from_config(n_layer=1, width=16, n_head=2, seed=0)
    >>> ro = pol.sample(["1+1="], 2, generator=torch.Generator().manual_seed(0), max_new_tokens=2)
    >>> d = [torch.ones_like(q) / sum(q.numel() for q in pol.parameters()) ** 0.5 for q in pol.parameters()]
    >>> directional_scores(pol, ro, d).shape
    (2,)
    """
    params = trainable_parameters(policy)
    if len(direction) != len(params):
        raise ValueError(f"direction has {len(direction)} tensors, the policy {len(params)} trainable parameters")
    theta = [q.detach().clone() for q in params]
    rows = list(range(rollout.completion_ids.shape[0]))

    def logp() -> torch.Tensor:
        return torch.cat([policy.token_logprobs(rollout.select(rows[k:k + chunk]))[0].sum(-1).double()
                          for k in range(0, len(rows), chunk)])

    try:
        for q, v in zip(params, direction):
            q.add_(v.to(q.dtype), alpha=eps)
        plus = logp()
        for q, t, v in zip(params, theta, direction):
            q.copy_(t).add_(v.to(q.dtype), alpha=-eps)
        minus = logp()
    finally:
        for q, t in zip(params, theta):
            q.copy_(t)
    return ((plus - minus) / (2 * eps)).cpu().numpy()


def kernel(G: np.ndarray, precond: np.ndarray | None = None, *, chunk: int = 1 << 22) -> np.ndarray:
    """``K = G P G^T`` with ``P = diag(precond)`` (identity when ``None``), accumulated in float64
    over column blocks of ``chunk`` parameters.

    Parameters
    ----------
    G : ndarray, shape (N, n)
        Rows ``grad p_x`` (:func:`success_jacobian`).
    precond : ndarray, shape (n,), optional
        The optimiser's diagonal preconditioner (Adam: :func:`rlvrlens.training.optim.adam_preconditioner`).

    Returns
    -------
    ndarray, shape (N, N)

    Examples
    --------
    >>> kernel(np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([1.0, 0.5])).tolist()
    [[3.0, 1.0], [1.0, 0.5]]
    """
    K = np.zeros((G.shape[0], G.shape[0]))
    for start in range(0, G.shape[1], chunk):
        block = G[:, start:start + chunk].astype(np.float64)
        K += (block if precond is None else block * precond[start:start + chunk]) @ block.T
    return K


def project(G: np.ndarray, vector: np.ndarray, *, chunk: int = 1 << 22) -> np.ndarray:
    """``G @ vector`` accumulated in float64 over column blocks (``G`` may be float32 and large).

    >>> project(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), np.array([1.0, -1.0]), chunk=1).tolist()
    [-1.0, -1.0]
    """
    out = np.zeros(G.shape[0])
    for start in range(0, G.shape[1], chunk):
        out += G[:, start:start + chunk].astype(np.float64) @ np.asarray(vector[start:start + chunk], dtype=np.float64)
    return out


def kl_projection(policy, ref, task: Task, G: np.ndarray, direction: str = PI_REF) -> np.ndarray:
    """``C[x, y] = <grad p_x, grad D_y>`` with ``D_y`` the exact sequence divergence of prompt ``y``.

    The divergence is taken over the two-token completion space
    (:class:`rlvrlens.training.tasks.EnumeratedTask`): ``KL(pi||pi_ref)`` for
    ``direction="pi||ref"`` (k2 and the exact KL), ``KL(pi_ref||pi)`` for ``"ref||pi"`` (k3). The
    KL term's share of one step is ``-(lr/N) beta sum_y C[x, y]`` (THEORY.md §4). The sampler must
    see the same space: ``task.max_new_tokens`` must be 2.

    Parameters
    ----------
    policy : Policy
        The policy being trained.
    ref : Policy
        The reference policy ``pi_ref`` (not differentiated).
    task : Task
        The prompts, with ``max_new_tokens = 2``.
    G : ndarray, shape (N, n_params)
        Rows ``grad_theta p_x`` over the trainable parameters.
    direction : {"pi||ref", "ref||pi"}, default "pi||ref"
        Which divergence.

    Returns
    -------
    ndarray, shape (N, N)
        ``C`` in float64.

    Raises
    ------
    ValueError
        If ``task.max_new_tokens != 2``.
    """
    if task.max_new_tokens != 2:
        raise ValueError(f"task.max_new_tokens must be 2 for the exact KL of the two-token completion space, got "
                         f"{task.max_new_tokens} (the sampled k2 would be the gradient of a longer space's KL)")
    params = trainable_parameters(policy)
    enum = EnumeratedTask(policy, task)
    with torch.no_grad():
        ref_first, ref_second = enum.log_probs(ref)
    first, second = enum.log_probs(policy)
    divergence = enum.kl(first, second, ref_first, ref_second, direction)
    cols = [flat_grad(divergence[y], params, retain_graph=y + 1 < len(task)) for y in range(len(task))]
    return G.astype(np.float64) @ np.stack(cols).T


class CountSketch:
    """A random projection of parameter vectors to ``k`` numbers that keeps inner products in
    expectation (Charikar, Chen & Farach-Colton 2002): coordinate ``i`` is added with a random sign
    ``s_i`` to a random bucket ``b_i``; ``<S a, S b>`` is unbiased for ``<a, b>`` with variance
    ``(|a|^2 |b|^2 + <a, b>^2 - 2 sum_i a_i^2 b_i^2) / k`` (at most ``2 |a|^2 |b|^2 / k``), so a kernel
    entry's relative error is about ``sqrt(2/k) / cos(a, b)``: 0.6% on the diagonal at ``k = 2^16``.

    The buckets and signs are drawn per block of ``block`` coordinates from a generator seeded by
    ``(seed, block index)``, so nothing of size ``n`` is stored and every call maps alike.

    Examples
    --------
    >>> sk = CountSketch(2**12, seed=0)
    >>> a, b = torch.randn(10_000), torch.randn(10_000)
    >>> abs(float(sk(a) @ sk(a)) / float(a @ a) - 1) < 0.1
    True
    """

    def __init__(self, k: int, *, seed: int = 0, block: int = 1 << 22) -> None:
        self.k, self.seed, self.block = int(k), int(seed), int(block)

    def __call__(self, vector: torch.Tensor) -> np.ndarray:
        """The sketch (float64, length ``k``) of a flat vector."""
        return self.stack([vector])[0]

    def stack(self, vectors: Sequence[torch.Tensor]) -> np.ndarray:
        """The sketches (float64, shape ``(len(vectors), k)``) of flat vectors of one length; the
        buckets and signs are drawn once per block for all of them."""
        flat = [v.detach().flatten().cpu() for v in vectors]
        if len({v.numel() for v in flat}) != 1:
            raise ValueError(f"vectors must have one length, got {sorted({v.numel() for v in flat})}")
        out = torch.zeros(self.k, len(flat), dtype=torch.float64)
        for index, start in enumerate(range(0, flat[0].numel(), self.block)):
            part = torch.stack([v[start:start + self.block] for v in flat], dim=1).double()
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            buckets = torch.randint(0, self.k, (part.shape[0],), generator=gen)
            signs = torch.randint(0, 2, (part.shape[0],), generator=gen).double() * 2 - 1
            out.index_add_(0, buckets, part * signs[:, None])
        return out.T.contiguous().numpy()
