"""MR-CCL and the MER2024 attention baseline, over utterance-level vectors.

Inputs are dicts keyed by modality (acoustic, visual, text); each value is B x D or, for
frame-level sequences later, B x L x D with an optional B x L padding mask (True = padding).
"""

import torch
from torch import nn

from ..classes import CLASSES
from ..store import MODALITIES
from .losses import Temperature

# Classifier name of each modality: A(coustic), V(isual), T(ext).
SHORT = {"acoustic": "A", "visual": "V", "text": "T"}


class SpecificEncoder(nn.Module):
    """Linear input map to d_model, Transformer encoder layers, mean pool, linear to hidden.

    The input map keeps the Transformer at a small width whatever the feature size (5120 for
    Baichuan2-13B); on a single utterance vector the sequence has length 1.
    """

    def __init__(self, in_dim: int, d_model: int, hidden: int, layers: int, heads: int, dropout):
        super().__init__()
        self.inp = nn.Linear(in_dim, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, 2 * d_model, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        h = self.encoder(self.inp(x), src_key_padding_mask=mask)
        if mask is None:
            h = h.mean(1)
        else:
            keep = (~mask).unsqueeze(-1).to(h.dtype)
            h = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.out(h)


class Standardize(nn.Module):
    """Per-modality, per-dimension z-scoring with statistics held as buffers (so they travel
    with the state dict). Identity until `fit` is called; fitted on a training fold's rows
    only, never on validation rows."""

    def __init__(self, dims: dict[str, int], enabled: bool = True):
        super().__init__()
        self.enabled = enabled
        for m, d in dims.items():
            self.register_buffer(f"mean_{m}", torch.zeros(d))
            self.register_buffer(f"std_{m}", torch.ones(d))

    @torch.no_grad()
    def fit(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for m, (mean, std) in stats.items():
            getattr(self, f"mean_{m}").copy_(mean)
            getattr(self, f"std_{m}").copy_(std.clamp_min(1e-6))

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.enabled:
            return x
        return {
            m: (v - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}") for m, v in x.items()
        }


class MRCCL(nn.Module):
    """Specificity encoders per modality, a shared invariant MLP, projections for IMCL-AE,
    classifiers A, V, T on the specific embeddings and F on their concatenation."""

    def __init__(
        self,
        dims: dict[str, int],
        hidden: int = 128,
        d_model: int = 128,
        layers: int = 1,
        heads: int = 4,
        dropout: float = 0.1,
        fusion_invariant: bool = False,
        temperature_init: float = 0.1,
        n_classes: int = len(CLASSES),
        standardize: bool = True,
    ):
        super().__init__()
        self.modalities = [m for m in MODALITIES if m in dims]
        self.norm = Standardize({m: dims[m] for m in self.modalities}, standardize)
        self.fusion_invariant = fusion_invariant
        self.specific = nn.ModuleDict(
            {
                m: SpecificEncoder(dims[m], d_model, hidden, layers, heads, dropout)
                for m in self.modalities
            }
        )
        self.invariant = nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.proj = nn.ModuleList(
            nn.Linear(hidden, hidden * (len(self.modalities) - 1)) for _ in self.modalities
        )
        self.tau_ne = Temperature(temperature_init)
        self.tau_ae = Temperature(temperature_init)
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict(
            {SHORT[m]: nn.Linear(hidden, n_classes) for m in self.modalities}
        )
        fused = hidden * len(self.modalities) + (hidden if fusion_invariant else 0)
        self.heads["F"] = nn.Linear(fused, n_classes)

    def embed(
        self, x: dict[str, torch.Tensor], masks: dict | None = None, normed: bool = False
    ) -> list[torch.Tensor]:
        """Specific embeddings; `normed`: x is already standardised (NEE noises it there)."""
        masks = masks or {}
        x = x if normed else self.norm(x)
        return [self.specific[m](x[m], masks.get(m)) for m in self.modalities]

    def forward(self, x: dict[str, torch.Tensor], masks: dict | None = None) -> dict:
        spec = self.embed(x, masks)
        inv = [self.invariant(s) for s in spec]
        fused = torch.cat(spec + ([torch.stack(inv).mean(0)] if self.fusion_invariant else []), -1)
        logits = {
            SHORT[m]: self.heads[SHORT[m]](self.drop(s))
            for m, s in zip(self.modalities, spec, strict=True)
        }
        logits["F"] = self.heads["F"](self.drop(fused))
        return {"specific": spec, "invariant": inv, "logits": logits}


class MLPEncoder(nn.Module):
    """MERTools MLPEncoder: dropout once on the input, then three Linear-ReLU layers."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.net(self.drop(x))


class AttentionBaseline(nn.Module):
    """MER2024 baseline `attention` (MERTools): per-modality MLP encoders; an MLP over their
    concatenation gives three modality weights (unnormalised, as in MERTools); the weighted sum
    of the hidden vectors feeds a linear classifier."""

    def __init__(
        self,
        dims: dict[str, int],
        hidden: int = 128,
        dropout: float = 0.5,
        n_classes: int = len(CLASSES),
        standardize: bool = False,
    ):
        super().__init__()
        self.modalities = [m for m in MODALITIES if m in dims]
        # MERTools feeds raw features; standardisation is an option, off by default.
        self.norm = Standardize({m: dims[m] for m in self.modalities}, standardize)
        self.encoders = nn.ModuleDict(
            {m: MLPEncoder(dims[m], hidden, dropout) for m in self.modalities}
        )
        self.attention_mlp = MLPEncoder(hidden * len(self.modalities), hidden, dropout)
        self.fc_att = nn.Linear(hidden, len(self.modalities))
        self.fc_out = nn.Linear(hidden, n_classes)

    def forward(self, x: dict[str, torch.Tensor], masks: dict | None = None) -> dict:
        x = self.norm(x)
        hs = [self.encoders[m](x[m]) for m in self.modalities]
        att = self.fc_att(self.attention_mlp(torch.cat(hs, -1))).unsqueeze(2)  # B x M x 1
        fused = torch.matmul(torch.stack(hs, dim=2), att).squeeze(2)  # B x H
        return {"logits": {"B": self.fc_out(fused)}, "attention": att.squeeze(2)}


def make_model(kind: str, dims: dict[str, int], p) -> nn.Module:
    """A model of `kind` (mrccl | baseline) for inputs of `dims`, sized by the params `p`."""
    if kind == "mrccl":
        return MRCCL(
            dims,
            hidden=p.hidden,
            d_model=p.d_model,
            layers=p.layers,
            heads=p.heads,
            dropout=p.dropout,
            fusion_invariant=p.fusion_invariant,
            temperature_init=p.temperature_init,
            standardize=p.standardize,
        )
    if kind == "baseline":
        return AttentionBaseline(
            dims, hidden=p.hidden, dropout=p.dropout, standardize=p.standardize
        )
    raise ValueError(kind)
