"""Modality dropout while fine-tuning (`finetune.modality_dropout`): per training sample and
modality, with probability p the modality's input is zeroed, exactly what the model sees for
a clip whose features are not valid (the store and `data.build_dataset` write zeros there and
the model gets no mask). A sample keeps at least one valid modality; a modality that is
already missing is not drawn again; validation and prediction batches are never touched."""

import torch


def dropout_mask(valid: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Bool B x M: True where a valid entry is dropped. Each valid entry with probability p;
    a row that would lose all its valid modalities gets one back, chosen at random among
    them. Random numbers are drawn on the CPU from `gen`."""
    valid = valid.cpu()
    drop = (torch.rand(valid.shape, generator=gen) < p) & valid
    lost = valid.any(1) & ~(valid & ~drop).any(1)
    if lost.any():
        score = torch.rand(valid.shape, generator=gen) * valid  # a random valid modality
        keep = torch.zeros_like(drop)
        keep[torch.arange(len(valid)), score.argmax(1)] = True
        drop &= ~(keep & lost[:, None])
    return drop


def drop_modalities(
    x: dict[str, torch.Tensor], valid: dict[str, torch.Tensor], p: float, gen: torch.Generator
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """x with the dropped modalities' rows zeroed (new tensors; `x` is not changed) and the
    B x M mask (modalities in the order of `x`)."""
    mods = list(x)
    drop = dropout_mask(torch.stack([valid[m].cpu() for m in mods], 1), p, gen)
    out = {}
    for j, m in enumerate(mods):
        keep = (~drop[:, j]).to(x[m].device, x[m].dtype).unsqueeze(1)
        out[m] = x[m] * keep
    return out, drop
