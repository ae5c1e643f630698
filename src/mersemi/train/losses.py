"""Contrastive losses of MR-CCL: symmetric InfoNCE, IMCL-NE (Eq. 3) and IMCL-AE (Eq. 4).

The temperature is applied once (logits = cos / tau), and the positive of row i is row i of the
*other* view (never an embedding's similarity with itself).
"""

import torch
import torch.nn.functional as F
from torch import nn


class Temperature(nn.Module):
    """Learnable temperature tau = exp(log_tau), clamped to [min_tau, max_tau]."""

    def __init__(self, init: float = 0.1, min_tau: float = 0.01, max_tau: float = 1.0):
        super().__init__()
        self.log_tau = nn.Parameter(torch.tensor(float(init)).log())
        self.min_tau, self.max_tau = min_tau, max_tau

    def forward(self) -> torch.Tensor:
        return self.log_tau.exp().clamp(self.min_tau, self.max_tau)


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE between paired rows of a and b (B x D each).

    L = 1/2 [ CE(S, I) + CE(S^T, I) ],  S_ij = cos(a_i, b_j) / tau.
    """
    a = F.normalize(a.float(), dim=-1)
    b = F.normalize(b.float(), dim=-1)
    logits = a @ b.T / tau
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def imcl_ne(
    clean: list[torch.Tensor], noisy: list[torch.Tensor], tau: torch.Tensor | float
) -> torch.Tensor:
    """Eq. 3: mean over modalities of InfoNCE(clean specific, noisy specific)."""
    losses = [info_nce(c, n, tau) for c, n in zip(clean, noisy, strict=True)]
    return torch.stack(losses).mean()


def imcl_ae(
    inv: list[torch.Tensor], proj: list[nn.Module], tau: torch.Tensor | float
) -> torch.Tensor:
    """Eq. 4: mean of six InfoNCE terms over the invariant embeddings c_a, c_v, c_t.

    Three pairwise terms (c_a,c_v), (c_a,c_t), (c_v,c_t) and three one-vs-rest terms
    (proj_m(c_m), [c_others]) where proj_m maps hidden -> 2*hidden.
    """
    m = len(inv)
    terms = [info_nce(inv[i], inv[j], tau) for i in range(m) for j in range(i + 1, m)]
    for i in range(m):
        rest = torch.cat([inv[j] for j in range(m) if j != i], dim=-1)
        terms.append(info_nce(proj[i](inv[i]), rest, tau))
    return torch.stack(terms).mean()
