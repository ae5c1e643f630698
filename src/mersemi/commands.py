"""Foundation subcommands: manifest, synth, store."""

import argparse
import json

from .manifest import Columns, build_manifest, read_manifest, write_manifest
from .store import merge_features, read_features
from .synth import MAX_UNLABELED, SynthConfig, make_synth


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifest", help="validate MER2024-style inputs, write manifest + shards")
    p.add_argument("--labeled-dir", required=True)
    p.add_argument("--label-csv", required=True)
    p.add_argument("--unlabeled-dir", required=True)
    p.add_argument("--test-dir")
    p.add_argument("--test-label-csv")
    p.add_argument("--transcript-csv")
    p.add_argument("--name-col", default=Columns.name)
    p.add_argument("--label-col", default=Columns.label)
    p.add_argument("--text-col", default=Columns.text)
    p.add_argument("--shards", type=int, required=True)
    p.add_argument("--out", required=True, help="manifest CSV")
    p.add_argument("--shard-dir", required=True, help="folder for shard-NNNN.csv files")
    p.set_defaults(func=_manifest)

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
    p.set_defaults(func=_synth)

    p = sub.add_parser("store", help="feature-store utilities")
    ssub = p.add_subparsers(dest="store_command", required=True)
    m = ssub.add_parser("merge", help="merge per-shard files of one modality")
    m.add_argument("shards", nargs="+")
    m.add_argument("--out", required=True)
    m.add_argument("--manifest", help="check that exactly the manifest's clips are present")
    m.set_defaults(func=_merge)
    i = ssub.add_parser("info", help="print a feature file's attributes and counts as JSON")
    i.add_argument("path")
    i.set_defaults(func=_info)


def _manifest(args) -> None:
    df = build_manifest(
        labeled_dir=args.labeled_dir,
        label_csv=args.label_csv,
        unlabeled_dir=args.unlabeled_dir,
        test_dir=args.test_dir,
        test_label_csv=args.test_label_csv,
        transcript_csv=args.transcript_csv,
        n_shards=args.shards,
        columns=Columns(args.name_col, args.label_col, args.text_col),
    )
    write_manifest(df, args.out, args.shard_dir, args.shards)


def _synth(args) -> None:
    make_synth(
        args.out, SynthConfig(seed=args.seed, n_unlabeled=args.n_unlabeled, n_shards=args.shards)
    )


def _merge(args) -> None:
    expected = read_manifest(args.manifest)["name"] if args.manifest else None
    merge_features(args.shards, args.out, expected)


def _info(args) -> None:
    fs = read_features(args.path)
    info = {**fs.meta.to_attrs(), "clips": len(fs), "valid": int(fs.valid.sum())}
    print(json.dumps(info, indent=2, ensure_ascii=False))
