"""Foundation subcommands: inventory, manifest, store."""

import argparse
import json

from .atomic import write_csv_atomic
from .clips import Columns
from .inventory import require_inventory, update_inventory
from .manifest import label_clips
from .store import merge_features, read_features


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inventory", help="scan the video folders, update the shard inventory (mersemi.inventory)"
    )
    p.add_argument("--labeled-dir", required=True)
    p.add_argument("--unlabeled-dir", required=True)
    p.add_argument("--test-dir")
    p.add_argument("--transcript-csv")
    p.add_argument("--name-col", default=Columns.name)
    p.add_argument("--text-col", default=Columns.text)
    p.add_argument("--shards", type=int, required=True, help="base shard count")
    p.add_argument("--out-dir", required=True, help="inventory folder")
    p.set_defaults(func=_inventory)

    p = sub.add_parser("manifest", help="the inventory's clips with their split and label")
    p.add_argument("--inventory", required=True, help="inventory folder (mersemi inventory)")
    p.add_argument(
        "--label-csv", help="omit for the splits alone (every label empty: what pretraining reads)"
    )
    p.add_argument("--test-label-csv")
    p.add_argument("--name-col", default=Columns.name)
    p.add_argument("--label-col", default=Columns.label)
    p.add_argument("--out", required=True, help="manifest CSV")
    p.set_defaults(func=_manifest)

    p = sub.add_parser("store", help="feature-store utilities")
    ssub = p.add_subparsers(dest="store_command", required=True)
    m = ssub.add_parser("merge", help="merge per-shard files of one modality")
    m.add_argument("shards", nargs="+", help="per-shard feature files")
    m.add_argument("--out", required=True)
    m.add_argument(
        "--inventory",
        help="inventory folder: keep each clip's row from the shard that owns it, and check "
        "that exactly the inventory's clips are present (needs --shard-ids)",
    )
    m.add_argument(
        "--shard-ids",
        nargs="+",
        metavar="ID",
        help="the shard id of each file, in the same order (e.g. 0000 0001)",
    )
    m.set_defaults(func=_merge)
    i = ssub.add_parser("info", help="print a feature file's attributes and counts as JSON")
    i.add_argument("path")
    i.set_defaults(func=_info)


def _inventory(args) -> None:
    update_inventory(
        args.out_dir,
        {"labeled": args.labeled_dir, "unlabeled": args.unlabeled_dir, "test": args.test_dir},
        args.shards,
        args.transcript_csv,
        Columns(name=args.name_col, text=args.text_col),
    )


def _manifest(args) -> None:
    inv = require_inventory(args.inventory)
    cols = Columns(name=args.name_col, label=args.label_col)
    write_csv_atomic(label_clips(inv.clips, args.label_csv, args.test_label_csv, cols), args.out)


def _merge(args) -> None:
    owners = require_inventory(args.inventory).owners if args.inventory else None
    merge_features(args.shards, args.out, owners, args.shard_ids)


def _info(args) -> None:
    fs = read_features(args.path)
    info = {**fs.meta.to_attrs(), "clips": len(fs), "valid": int(fs.valid.sum())}
    print(json.dumps(info, indent=2, ensure_ascii=False))
