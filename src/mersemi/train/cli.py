"""`mersemi train ...`: one subcommand per workflow step, explicit input and output paths."""

import argparse
import json
import logging
from dataclasses import asdict

import pandas as pd

from ..classes import CLASSES
from ..errors import InputError
from ..report.table1 import ablation_table, markdown_table
from ..tables import read_csv_table
from . import io, searchcli, vote
from .params import (
    BaselineParams,
    FinetuneParams,
    PretrainParams,
    ProbeParams,
    PseudoParams,
    VoteParams,
    parse_finetune,
    parse_params,
)

log = logging.getLogger(__name__)


def _features(p: argparse.ArgumentParser) -> None:
    p.add_argument("--acoustic", required=True, help="merged acoustic feature file (HDF5)")
    p.add_argument("--visual", required=True, help="merged visual feature file (HDF5)")
    p.add_argument("--text", required=True, help="merged text feature file (HDF5)")
    p.add_argument("--manifest", required=True, help="manifest CSV")


def _params(p: argparse.ArgumentParser, cls) -> None:
    p.add_argument("--params", default="{}", help=f"JSON object of {cls.__name__} overrides")


def _cv_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-checkpoint", required=True, help="fold models (.pt state dicts)")
    p.add_argument("--out-predictions", required=True, help="predictions CSV")
    p.add_argument("--out-metrics", required=True, help="metrics JSON")


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="MR-CCL training, baseline, self-training, voting")
    tsub = t.add_subparsers(dest="train_command", required=True, metavar="STEP")

    p = tsub.add_parser("pretrain", help="contrastive pretraining (IMCL-NE + IMCL-AE)")
    _features(p)
    p.add_argument("--out-checkpoint", required=True)
    p.add_argument("--out-metrics", required=True, help="losses per epoch, throughput (JSON)")
    _params(p, PretrainParams)
    p.set_defaults(func=_pretrain)

    p = tsub.add_parser("baseline", help="MER2024 attention baseline, k-fold CV")
    _features(p)
    _cv_outputs(p)
    _params(p, BaselineParams)
    p.set_defaults(func=_baseline)

    p = tsub.add_parser("finetune", help="MR-CCL fine-tuning, k-fold CV (step 1 or 2)")
    _features(p)
    p.add_argument(
        "--step",
        type=int,
        choices=(1, 2),
        help="2: paper's step-2 defaults (lr 5e-5, oversample to 1000); default: the step"
        " --params names, else 1",
    )
    p.add_argument("--pretrained", help="pretraining checkpoint (omit: train from scratch)")
    p.add_argument("--init", help="step-1 checkpoint to start each fold from (step 2)")
    p.add_argument("--pseudo", help="pseudo-label CSV (name,discrete) added to training folds")
    p.add_argument(
        "--min-new",
        type=int,
        help="a round r >= 2 of pseudo.rounds: pass --init's step through unchanged when the"
        " round adds fewer pseudo labels than this beyond the one before (0: never);"
        " needs --audit, --prev-audit, --prev-predictions, --prev-metrics",
    )
    p.add_argument("--audit", help="this round's pseudo-label audit JSON")
    p.add_argument("--prev-audit", help="the previous round's pseudo-label audit JSON")
    p.add_argument("--prev-predictions", help="predictions CSV of the step --init is")
    p.add_argument("--prev-metrics", help="metrics JSON of the step --init is")
    _cv_outputs(p)
    _params(p, FinetuneParams)
    p.set_defaults(func=_finetune)

    p = tsub.add_parser(
        "probe", help="linear probe: logistic regression on the standardised features, k-fold CV"
    )
    _features(p)
    p.add_argument("--out-predictions", required=True, help="predictions CSV")
    p.add_argument("--out-metrics", required=True, help="metrics JSON")
    _params(p, ProbeParams)
    p.set_defaults(func=_probe)

    p = tsub.add_parser(
        "feature-bench",
        help="feature benchmark: probe and baseline per feature set (and combinations), ranked",
    )
    p.add_argument(
        "--set",
        action="append",
        required=True,
        metavar="NAME=MODALITY:PATH",
        help="a feature set: its name, modality and merged HDF5 file (repeat)",
    )
    p.add_argument(
        "--combo",
        action="append",
        default=[],
        metavar="NAME+NAME[+NAME]",
        help="sets of distinct modalities trained together (repeat)",
    )
    p.add_argument("--manifest", required=True, help="manifest CSV")
    p.add_argument("--out-md", required=True, help="ranked table (markdown)")
    p.add_argument("--out-csv", required=True, help="ranked table (CSV)")
    p.add_argument("--out-json", required=True, help="rows, sets and params (JSON)")
    p.add_argument(
        "--params",
        default="{}",
        help='JSON: {"seeds": [...], "models": [...], "probe": {...}, "baseline": {...}}',
    )
    p.set_defaults(func=_feature_bench)

    p = tsub.add_parser("pseudo", help="pseudo labels where MR-CCL and baseline agree")
    p.add_argument("--mrccl", required=True, help="MR-CCL predictions CSV (step 1)")
    p.add_argument("--baseline", required=True, help="baseline predictions CSV")
    p.add_argument("--probe", help="linear-probe predictions CSV (pseudo.agree lists probe)")
    p.add_argument("--truth", help="optional name,discrete CSV of true pool labels (audit)")
    p.add_argument("--out", required=True, help="pseudo-label CSV")
    p.add_argument("--out-audit", required=True, help="audit JSON")
    p.add_argument("--out-sweep", help="threshold sweep as CSV")
    _params(p, PseudoParams)
    p.set_defaults(func=_pseudo)

    p = tsub.add_parser("rounds", help="rounds.json: each round's pseudo labels and step")
    p.add_argument("--audit", action="append", required=True, help="round r's audit (in order)")
    p.add_argument(
        "--metrics", action="append", required=True, help="step r + 1's metrics (in order)"
    )
    p.add_argument("--out", required=True, help="rounds JSON")
    p.set_defaults(func=_rounds)

    p = tsub.add_parser("vote", help="weighted soft voting, metrics and submission.csv")
    p.add_argument("--predictions", required=True, help="predictions CSV of finetune")
    p.add_argument("--out-predictions", required=True)
    p.add_argument("--out-metrics", required=True)
    p.add_argument("--out-submission", required=True, help="name,discrete for the pool clips")
    p.add_argument(
        "--out-status", help="name,status beside the submission (ok | no_valid_modality)"
    )
    _params(p, VoteParams)
    p.set_defaults(func=_vote)

    searchcli.register(tsub)  # the baseline search's four jobs (docs: "Baseline search")

    p = tsub.add_parser("ablations", help="Table 1: rows of CV WAF / test WAF")
    p.add_argument(
        "--row",
        action="append",
        required=True,
        metavar="LABEL=METRICS_JSON",
        help="one table row, in order (repeat; the same label again adds a seed)",
    )
    p.add_argument("--out-csv", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-json", required=True)
    p.set_defaults(func=_ablations)


def _load(args):
    from .data import load_dataset

    return load_dataset(args.acoustic, args.visual, args.text, args.manifest)


def _pretrain(args) -> None:
    from .pipeline import run_pretrain

    p = parse_params(PretrainParams, args.params)
    ck, metrics = run_pretrain(_load(args), p)
    io.save_checkpoint(ck, args.out_checkpoint)
    io.write_json(metrics, args.out_metrics)


def _write_cv(args, ck, df, metrics) -> None:
    io.save_checkpoint(ck, args.out_checkpoint)
    io.write_csv(df, args.out_predictions)
    io.write_json(metrics, args.out_metrics)


def _baseline(args) -> None:
    from .pipeline import run_baseline

    p = parse_params(BaselineParams, args.params)
    _write_cv(args, *run_baseline(_load(args), p))


def _finetune(args) -> None:
    from .pipeline import run_finetune

    p = parse_finetune(args.params, args.step)
    if args.init and p.step != 2:
        raise InputError("--init is for step 2 (start each fold from the step-1 fold model)")
    pretrained = io.load_checkpoint(args.pretrained, "mrccl-pretrain") if args.pretrained else None
    init = io.load_checkpoint(args.init, "mrccl") if args.init else None
    rnd = _round(args)
    if rnd is not None and rnd["stopped_early"]:
        from .rounds import pass_through

        out = {"checkpoint": args.out_checkpoint, "predictions": args.out_predictions}
        pass_through(
            args.init,
            args.prev_predictions,
            args.prev_metrics,
            out | {"metrics": args.out_metrics},
            rnd,
        )
        log.info("round passed through: %s", rnd["stopped_because"])
        return
    pseudo = None
    if args.pseudo:
        pseudo = read_csv_table(args.pseudo, ["name", "discrete"], "pseudo-label CSV")
    ck, df, metrics = run_finetune(_load(args), p, pretrained, init, pseudo)
    _write_cv(args, ck, df, metrics if rnd is None else metrics | rnd)


def _round(args) -> dict | None:
    """A round's decision (--min-new and its four files), or None outside the rounds."""
    files = ("init", "audit", "prev_audit", "prev_predictions", "prev_metrics")
    if args.min_new is None:
        if any(getattr(args, k) for k in files[1:]):
            raise InputError(
                "--audit, --prev-audit, --prev-predictions, --prev-metrics need --min-new"
            )
        return None
    missing = ["--" + k.replace("_", "-") for k in files if not getattr(args, k)]
    if args.min_new < 0:
        raise InputError(f"--min-new must be >= 0, got {args.min_new}")
    if missing:
        raise InputError(f"--min-new needs {', '.join(missing)}")
    from .rounds import round_decision

    return round_decision(args.audit, args.prev_audit, args.prev_metrics, args.min_new)


def _probe(args) -> None:
    from .probe import run_probe

    p = parse_params(ProbeParams, args.params)
    df, metrics = run_probe(_load(args), p)
    io.write_csv(df, args.out_predictions)
    io.write_json(metrics, args.out_metrics)


def _feature_bench(args) -> None:
    from pathlib import Path

    from ..atomic import atomic_path
    from . import featurebench as fb

    p = fb.parse_bench_params(args.params)
    sets = [fb.parse_set(s) for s in args.set]
    df, doc = fb.feature_bench(sets, args.combo, args.manifest, p)
    io.write_csv(fb.csv_frame(df), args.out_csv)
    with atomic_path(args.out_md) as tmp:
        Path(tmp).write_text(fb.markdown(df), "utf-8")
    io.write_json(doc, args.out_json)


def _pseudo(args) -> None:
    from .pipeline import run_pseudo

    p = parse_params(PseudoParams, args.params)
    truth = read_csv_table(args.truth, ["name", "discrete"], "truth CSV") if args.truth else None
    probe = io.read_predictions(args.probe) if args.probe else None
    if probe is not None and "probe" not in p.agree:
        raise InputError(f"--probe given but pseudo.agree {p.agree} does not list probe")
    out, report = run_pseudo(
        io.read_predictions(args.mrccl), io.read_predictions(args.baseline), p, truth, probe
    )
    io.write_csv(out, args.out)
    io.write_json({"params": asdict(p), **report}, args.out_audit)
    if args.out_sweep:
        rows = [
            {
                "threshold": s["threshold"],
                "count": s["count"],
                "precision": s.get("precision"),
                **{f"n_{c}": s["per_class"][c] for c in CLASSES},
            }
            for s in report["sweep"]
        ]
        io.write_csv(pd.DataFrame(rows), args.out_sweep)


def _rounds(args) -> None:
    from .rounds import read_json, summarise_rounds

    audits = [read_json(a, "--audit") for a in args.audit]
    metrics = [read_json(m, "--metrics") for m in args.metrics]
    io.write_json(summarise_rounds(audits, metrics), args.out)


def vote_both(df: pd.DataFrame, p) -> tuple[pd.DataFrame, dict]:
    """The paper's weights, fitted ones (nested over folds) and the auto choice between them
    (nested too); the frame and top-level metrics follow `p.use`, "votes" holds all three.
    With `p.prior` em each vote's pool rows are re-weighted to the pool's estimated prior
    (labelshift.prior_revote; its `prior` entry in that vote and at the top)."""
    paper = vote.revote(df, p.weights)
    fitted, info = vote.nested_revote(df, p.weights, "fitted")
    auto, auto_info = vote.nested_revote(df, p.weights, "auto")
    frames = {"paper": paper, "fitted": fitted, "auto": auto}
    metas = {"paper": {"weights": p.weights}, "fitted": info, "auto": auto_info}
    if p.prior == "em":
        from .labelshift import prior_revote

        for k, frame in frames.items():
            frames[k], prior = prior_revote(frame)
            metas[k] = {**metas[k], "prior": prior}
    votes = {k: {**metas[k], **io.evaluate(frames[k])} for k in frames}
    used = frames[p.use]
    extra = {"prior": votes[p.use]["prior"]} if p.prior == "em" else {}
    return used, {
        "weights": votes[p.use]["weights"],
        "use": p.use,
        **extra,
        **io.evaluate(used),
        "votes": votes,
    }


def _vote(args) -> None:
    p = parse_params(VoteParams, args.params)
    df, metrics = vote_both(io.read_predictions(args.predictions), p)
    io.write_csv(df, args.out_predictions)
    io.write_json({"params": asdict(p), **metrics}, args.out_metrics)
    io.write_csv(io.submission(df), args.out_submission)
    status = io.submission_status(df)
    blind = status[status["status"] != "ok"]
    if len(blind):
        log.warning(
            "%d submitted clip(s) had no valid modality (their label is the model's prior), "
            "e.g. %s; listed in %s", len(blind), list(blind["name"][:5]), args.out_status,
        )  # fmt: skip
    if args.out_status:
        io.write_csv(status, args.out_status)


def _ablations(args) -> None:
    from pathlib import Path

    from ..atomic import atomic_path

    rows = []
    for spec in args.row:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise InputError(f"--row {spec!r}: expected LABEL=METRICS_JSON")
        try:
            rows.append((label, json.loads(Path(path).read_text("utf-8"))))
        except FileNotFoundError:
            raise InputError(f"--row {label}: metrics file {path} not found") from None
        except json.JSONDecodeError as e:
            raise InputError(f"--row {label}: {path} is not JSON ({e})") from None
    df = ablation_table(rows)
    io.write_csv(df, args.out_csv)
    with atomic_path(args.out_md) as tmp:
        Path(tmp).write_text(markdown_table(df), "utf-8")
    io.write_json(df.to_dict(orient="records"), args.out_json)
