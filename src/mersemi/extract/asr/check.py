"""`check-models` for the asr stage: the WeNet runtime directory, on the CPU."""

from ...errors import InputError
from ...params import check_params
from ..modelcheck import bad, ok, package_check
from ..models import require_model_dir
from . import STAGE, Params
from .units import read_units


def check_model(params: Params) -> list:
    """Cheap checks of the WeNet runtime directory (CPU, one encoder chunk of zeros)."""
    fix_dir = (
        "set extract.asr.model_dir to a WeNet runtime directory (final.zip + units.txt), e.g. "
        "WenetSpeech u2pp_conformer_libtorch; see docs/extraction_models.md"
    )
    checks = [
        package_check(STAGE, "torch"),
        package_check(STAGE, "kaldi_native_fbank", "kaldi-native-fbank"),
    ]
    try:
        check_params(params, STAGE)
    except InputError as e:
        return [*checks, bad(STAGE, "params", str(e), "fix extract.asr in the config")]
    try:
        path = require_model_dir(STAGE, "model_dir", params.model_dir, ["final.zip", "units.txt"])
    except InputError as e:
        return [*checks, bad(STAGE, "model_dir", str(e), fix_dir)]
    if not checks[0].ok:
        return checks
    # torch only now: its absence is a failed check above, not an ImportError
    import torch

    from .wenet_load import load_runtime_model

    try:
        model = load_runtime_model(path, torch.device("cpu"))
    except InputError as e:
        fix = "export the checkpoint with python -m wenet.bin.export_jit, or download it again"
        return [*checks, bad(STAGE, "final.zip", str(e), fix)]
    sub, ctx = int(model.subsampling_rate()), int(model.right_context()) + 1
    checks.append(ok(STAGE, "final.zip", f"{path / 'final.zip'}: subsampling {sub}, context {ctx}"))
    try:
        xs = torch.zeros(1, 15 * sub + ctx, params.num_mel_bins)  # one runtime chunk of 16
        empty = torch.zeros(0, 0, 0, 0)
        with torch.inference_mode():
            enc, _, _ = model.forward_encoder_chunk(xs, 0, -1, empty, empty)
            vocab = int(model.ctc_activation(enc).shape[-1])
    except RuntimeError as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return [
            *checks,
            bad(
                STAGE,
                "num_mel_bins",
                f"the encoder refuses {params.num_mel_bins}-bin fbank: {msg}",
                "set extract.asr.num_mel_bins to the model's input_dim (train.yaml)",
            ),
        ]
    checks.append(ok(STAGE, "num_mel_bins", f"{params.num_mel_bins} -> vocab {vocab}"))
    try:
        units = read_units(path / "units.txt")
    except InputError as e:
        checks.append(bad(STAGE, "units.txt", str(e), "use the units.txt shipped with final.zip"))
    else:
        if len(units) == vocab:
            checks.append(ok(STAGE, "units.txt", f"{len(units)} units = model vocab"))
        else:
            checks.append(
                bad(
                    STAGE,
                    "units.txt",
                    f"{path / 'units.txt'} has {len(units)} units, the model outputs {vocab}",
                    "use the units.txt shipped with this final.zip",
                )
            )
    has_decoder = hasattr(model, "forward_attention_decoder")
    if has_decoder:
        bi = hasattr(model, "is_bidirectional_decoder") and model.is_bidirectional_decoder()
        checks.append(
            ok(
                STAGE,
                "decoder",
                f"attention decoder ({'bidirectional' if bi else 'left-to-right'})",
            )
        )
        if params.reverse_weight > 0 and not bi:
            checks.append(
                bad(
                    STAGE,
                    "reverse_weight",
                    f"reverse_weight {params.reverse_weight} but no right-to-left decoder",
                    "set extract.asr.reverse_weight: 0",
                )
            )
    elif params.decoding == "attention_rescoring":
        checks.append(
            bad(
                STAGE,
                "decoder",
                f"{path / 'final.zip'} has no forward_attention_decoder",
                "set extract.asr.decoding: auto (CTC prefix beam) or use a U2/U2++ export",
            )
        )
    else:
        checks.append(ok(STAGE, "decoder", "none: decoding uses the CTC prefix beam"))
    # WeNet's export puts global CMVN inside final.zip; the runtime reads no global_cmvn file.
    enc_mod = getattr(model, "encoder", None)
    inside = enc_mod is not None and hasattr(enc_mod, "global_cmvn")
    checks.append(
        ok(
            STAGE,
            "cmvn",
            "global CMVN inside final.zip" if inside else "no global_cmvn layer named in final.zip",
        )
    )
    return checks
