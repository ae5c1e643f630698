"""`mersemi synth`: write a synthetic feature set (default or speakers profile).

Apart from the core's commands, so that editing a fixture reruns no workflow rule.
"""

import argparse

from ..errors import InputError
from .synth import MAX_UNLABELED, SynthConfig, make_synth
from .synth_speakers import SpeakerSynthConfig, make_speaker_synth


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write the synthetic feature benchmark")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--n-unlabeled",
        type=int,
        default=SynthConfig.n_unlabeled,
        help=f"unlabeled pool size (at most {MAX_UNLABELED})",
    )
    p.add_argument("--seed", type=int, default=SynthConfig.seed)
    p.add_argument("--shards", type=int, default=SynthConfig.n_shards)
    p.add_argument(
        "--profile",
        choices=("default", "speakers"),
        default="default",
        help="speakers: speaker effects in every modality, unseen test speakers, ambiguous "
        "pool clips (mersemi.demo.synth_speakers)",
    )
    p.add_argument(
        "--order",
        help="speakers profile: modality strength, strongest first (default text,acoustic,visual)",
    )
    p.add_argument(
        "--missing",
        type=float,
        default=SynthConfig.missing,
        help="probability that a clip misses a modality, per modality (zeros, valid False)",
    )
    p.add_argument(
        "--test-shift",
        type=float,
        help="speakers profile: total-variation distance of the test class mix from the "
        f"labeled mix (default {SpeakerSynthConfig.test_shift})",
    )
    p.set_defaults(func=_synth)


def _synth(args) -> None:
    if not 0 <= args.missing < 1:
        raise InputError(f"--missing must be in [0, 1), got {args.missing}")
    common = {"seed": args.seed, "n_unlabeled": args.n_unlabeled, "n_shards": args.shards}
    common["missing"] = args.missing
    if args.profile == "speakers":
        kw = {"order": tuple(args.order.split(","))} if args.order else {}
        if args.test_shift is not None:
            kw["test_shift"] = args.test_shift
        cfg = SpeakerSynthConfig(**common, **kw)
        try:
            cfg.noise()
        except ValueError as e:
            raise InputError(f"--order: {e}") from None
        try:
            make_speaker_synth(args.out, cfg)
        except ValueError as e:
            raise InputError(f"--test-shift: {e}" if "test_shift" in str(e) else str(e)) from None
        return
    for flag, given in (("--order", args.order), ("--test-shift", args.test_shift)):
        if given is not None:
            raise InputError(f"{flag} is an option of --profile speakers")
    make_synth(args.out, SynthConfig(**common))
