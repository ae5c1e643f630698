"""asr: the WeNet export fixture through WenetRecognizer (encoder + CTC, fp32)."""

from __future__ import annotations

from .part import Part, SkipPart, count_flops, fixture, timed


def run(P: Part, dev) -> None:
    import numpy as np

    from mersemi.extract.asr import Params
    from mersemi.extract.asr.recognizer import WenetRecognizer
    from mersemi.extract.asr.wenet_decode import ctc_greedy
    from mersemi.extract.wav import read_wav

    fx = fixture("wenet-u2pp-small")
    if fx is None:
        raise SkipPart("no wenet-u2pp-small fixture (benchmarks/gpu_carry.sh copies it)")
    wave, sr = read_wav(fx / "sample.wav")
    try:
        from mersemi.extract.asr.fbank import fbank

        fbank(wave[:1600])
        feat_of = fbank
        source = "kaldi-native-fbank"
    except ImportError:  # the encoder's speed does not depend on where the frames came from
        base = np.load(fx / "fbank.npy")
        feat_of = None
        source = "the fixture's fbank.npy (kaldi-native-fbank missing)"
    n = 4 if P.args.smoke else 24
    utts = []
    for k in range(n):
        reps = 1 + k % 5  # 3 .. 15 s
        utts.append(feat_of(np.tile(wave, reps)) if feat_of else np.tile(base, (reps, 1)))
    seconds = sum(len(f) for f in utts) / 100  # 10 ms frames
    rec = WenetRecognizer(Params(model_dir=str(fx), device=str(dev)))
    cpu = rec if dev.type == "cpu" else WenetRecognizer(Params(model_dir=str(fx), device="cpu"))
    for f in utts[:3]:
        rec.log_probs(f)  # TorchScript profiling runs

    def run():
        return [ctc_greedy(rec.log_probs(f)) for f in utts]

    ts = timed(run, dev)
    try:
        flops = count_flops(lambda: rec.log_probs(utts[0])) * seconds / (len(utts[0]) / 100)
    except Exception:  # noqa: BLE001 - TorchScript may hide its ops from the counter
        flops = 0
    diff = max(float(np.abs(rec.log_probs(f) - cpu.log_probs(f)).max()) for f in utts[:4])
    P.row(
        what="asr WeNet fixture encoder+CTC",
        precision="fp32",
        single=seconds / ts,
        unit="audio-s/s",
        flops_per_s=(flops / ts) or None,
        max_abs_diff=diff if dev.type != "cpu" else None,
        note=f"{n} utterances, {seconds:.0f} s; one utterance per call (runtime design); "
        f"148k-param model; log-probs vs CPU (max_abs_diff); fbank from {source}",
    )
