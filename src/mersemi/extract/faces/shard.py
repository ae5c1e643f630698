"""The faces stage's work: every clip of a shard through the backend, into one crops file."""

import json

from ...errors import InputError
from ...provenance import provenance
from ..common import Outcome, departures, meta_params, prefetch, progress, read_shard, write_reasons
from ..crops import CropWriter
from . import MERTOOLS, STAGE, Params
from .backends import opencv_clip, openface_clip
from .haar import HaarAligner
from .openface import openface_binary, openface_model_problem


def run(args, p: Params) -> Outcome:
    """The crops of every clip of `args.shard` -> `args.out`; returns the Outcome."""
    clips = read_shard(args.shard)
    out = args.out
    gone = departures(STAGE, p, MERTOOLS)
    if p.backend == "opencv":
        aligner = HaarAligner(p)

        def work(c):
            return opencv_clip(aligner, c[1].path, p)
    else:
        exe = openface_binary(p)
        problem = openface_model_problem(exe, p)
        if problem:  # every clip would fail the same way: stop before the shard
            raise InputError(f"faces: {problem[0]}; {problem[1]}")

        def work(c):
            return openface_clip(exe, c[1].path, p)

    outcome = Outcome([c.name for c in clips])
    s = p.crop_size
    with CropWriter(out, s, len(clips)) as writer:
        results = prefetch(work, list(enumerate(clips)), p.workers, p.prefetch)
        for (i, _clip), res, err in progress(results, total=len(clips), desc="faces"):
            if err is not None:
                outcome.fail_with(i, err)
                writer.add(i)
            else:
                writer.add(i, *res)
        params = {**meta_params(p), "size": s, "keep_failed": p.keep_failed, "departures": gone}
        attrs = {
            "backend": p.backend,
            "size": s,
            "params": json.dumps(params, sort_keys=True),
            "provenance": json.dumps(provenance(meta_params(p)), sort_keys=True),
        }
        writer.close(outcome, attrs)
        write_reasons(outcome, out)  # before the crops file is in place, as its sidecar
    outcome.log_summary(STAGE, out)
    return outcome
