"""Foundation subcommands: inventory, manifest, store, features (MERTools feature folders)."""

import argparse
import json
import logging
import os
from pathlib import Path

from .atomic import write_csv_atomic
from .clips import Columns
from .featurefolder import SUFFIX, read_folder, read_names, write_folder
from .inventory import require_inventory, update_inventory
from .manifest import label_clips
from .store import MODALITIES, FeatureMeta, merge_features, read_features, write_features

log = logging.getLogger(__name__)


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
    _register_features(sub)


def _register_features(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="MERTools feature folders (<feature>-UTT/<name>.npy) in and out"
    )
    fsub = p.add_subparsers(dest="features_command", required=True)
    i = fsub.add_parser("import", help="a MERTools -UTT folder as a feature file, checked")
    i.add_argument("folder", help="a MERTools <feature>-UTT folder of <name>.npy files")
    i.add_argument("--out", required=True, help="feature file to write (.h5)")
    i.add_argument("--modality", required=True, choices=MODALITIES)
    i.add_argument(
        "--names",
        required=True,
        help="the clips to import: an inventory folder, its clips.csv, a manifest or any CSV "
        "with a name column; every clip must have a file and every file a clip",
    )
    i.add_argument("--name-col", default=Columns.name)
    i.add_argument(
        "--missing",
        choices=("error", "invalid"),
        default="error",
        help="a named clip without a file: error (default), or invalid (a zero row with "
        "valid=false, as for a clip that could not be processed)",
    )
    i.add_argument(
        "--extra",
        choices=("error", "drop"),
        default="error",
        help="a file of a clip not in --names: error (default), or drop (left out, logged)",
    )
    i.add_argument("--model", help="model attr (default: the folder's feature name)")
    i.add_argument("--layers", default="unknown (MERTools feature folder)", help="layers attr")
    i.add_argument("--pooling", default="utterance level (MERTools -UTT)", help="pooling attr")
    i.set_defaults(func=_import)
    e = fsub.add_parser("export", help="a feature file as a MERTools -UTT folder")
    e.add_argument("path", help="feature file (.h5), ours or imported")
    e.add_argument("--out", required=True, help="folder to write <feature>-UTT/ into")
    e.add_argument("--feature", help="feature name (default: the feature file's stem)")
    e.add_argument(
        "--invalid",
        choices=("skip", "zeros"),
        default="skip",
        help="rows with valid=false: skip (no file, default; logged) or zeros (their zero rows)",
    )
    e.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    e.set_defaults(func=_export)


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


def import_feature_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    modality: str,
    names: list[str],
    missing: str = "error",
    extra: str = "error",
    model: str | None = None,
    layers: str = "unknown (MERTools feature folder)",
    pooling: str = "utterance level (MERTools -UTT)",
) -> FeatureMeta:
    """Read a MERTools -UTT folder (checked against `names`) and write it as a feature file."""
    ff = read_folder(folder, names, missing=missing, extra=extra)  # type: ignore[arg-type]
    meta = FeatureMeta(
        modality=modality,
        model=model or ff.feature,
        layers=layers,
        pooling=pooling,
        dim=ff.dim,
        params={"source": "mertools-folder", "feature": ff.feature, "missing": missing},
    )
    write_features(out, meta, ff.names, ff.features, ff.valid)
    log.info(
        "imported %s into %s: %d clips, dim %d, %d invalid (no file), %d file(s) dropped",
        folder,
        out,
        len(ff.names),
        ff.dim,
        len(ff.missing),
        len(ff.dropped),
    )
    return meta


def export_feature_folder(
    path: str | os.PathLike,
    out: str | os.PathLike,
    feature: str | None = None,
    invalid: str = "skip",
    overwrite: bool = False,
) -> Path:
    """Write a feature file as `out/<feature>-UTT/<name>.npy` (float32 (D,))."""
    fs = read_features(path)
    feature = feature or Path(path).name.removesuffix(".h5")
    folder = write_folder(
        out,
        feature,
        list(fs.names),
        fs.features,
        fs.valid,
        invalid,
        overwrite,  # type: ignore[arg-type]
    )
    n = int(fs.valid.sum()) if invalid == "skip" else len(fs)
    log.info("exported %s (%s, %s, dim %d) to %s: %d %s file(s)", path, fs.meta.modality,
             fs.meta.model, fs.meta.dim, folder, n, SUFFIX)  # fmt: skip
    return folder


def _import(args) -> None:
    import_feature_folder(
        args.folder,
        args.out,
        args.modality,
        read_names(args.names, args.name_col),
        args.missing,
        args.extra,
        args.model,
        args.layers,
        args.pooling,
    )


def _export(args) -> None:
    export_feature_folder(args.path, args.out, args.feature, args.invalid, args.overwrite)
