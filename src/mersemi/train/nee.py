"""Noise embedding enhancement (Eq. 1-2): N = sqrt(abar_t) F + sqrt(1 - abar_t) eps.

abar_t = prod_{s<=t} (1 - beta_s), beta linear from beta_start to beta_end over T steps,
t drawn uniformly from 1..T per sample. Vectorised over the batch.
"""

import torch


def alpha_bar(steps: int = 100, beta_start: float = 0.001, beta_end: float = 0.1) -> torch.Tensor:
    """abar_t for t = 1..T, as a tensor of length T (index t-1)."""
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0).float()


def add_noise(
    x: torch.Tensor, t: torch.Tensor, abar: torch.Tensor, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """Noisy copy of `x` (B x ... ) at per-sample steps `t` (B, values 1..T)."""
    if noise is None:
        noise = torch.randn_like(x)
    a = abar.to(x.device)[t.to(x.device) - 1].to(x.dtype)
    a = a.view(-1, *([1] * (x.dim() - 1)))
    return a.sqrt() * x + (1.0 - a).sqrt() * noise


def sample_steps(
    batch: int, steps: int, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """t ~ Uniform{1..T}, one per sample."""
    t = torch.randint(1, steps + 1, (batch,), generator=generator)
    return t.to(device) if device is not None else t
