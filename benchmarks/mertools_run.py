"""Run MERTools' own MER2024 baseline (`main-release.py --model attention`) on a mersemi
feature set, with given folds, and write its CV and test WAF as JSON.

MERTools is not part of mersemi: fetch it (github.com/zeroQiaoba/MERTools) and pass its
MER2024 folder. Its code runs unmodified; this harness only
- writes the features as MERTools reads them (one .npy per clip and modality) and the label
  file (`train_corpus` / `test1_corpus`),
- replaces MERTools' random 5-way split by the folds given (so both sides see the same ones),
- runs on CPU: `.cuda()` becomes a no-op,
- stands in for imports the `attention` path never calls when they are not installed (cv2,
  torchaudio, thop, matplotlib, the AffectGPT/ImageBind audio loader) and reads the
  hyper-parameter YAML with PyYAML instead of OmegaConf (only `OmegaConf.load(path)[model]`
  is used).

    python benchmarks/mertools_run.py --mertools /tmp/mertools/MER2024 --data SYNTH_DIR \
        --folds folds.json --out out.json --epochs 100 --hidden 128 --dropout 0.5 --lr 1e-3
"""

import argparse
import json
import os
import random
import runpy
import sys
import types
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.metrics import f1_score


def _stub_modules(hyper_loader) -> None:
    for name in ("cv2", "torchaudio", "thop", "matplotlib", "matplotlib.pyplot"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.profile = None  # thop
            mod.use = lambda *a, **k: None  # matplotlib
            mod.cm = types.SimpleNamespace(Blues=None)  # pyplot (a default argument)
            sys.modules[name] = mod
    om = types.ModuleType("omegaconf")
    om.OmegaConf = types.SimpleNamespace(load=hyper_loader)
    sys.modules["omegaconf"] = om
    im = types.ModuleType("toolkit.models.modules.affectgpt.models.ImageBind.data")
    im.load_and_transform_audio_data = None
    sys.modules[im.__name__] = im


def _cpu_only() -> None:
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.cuda.set_device = lambda *a, **k: None


def write_inputs(data: Path, work: Path) -> tuple[list[str], list[str]]:
    """Per-clip .npy features and MERTools' label npz; returns (train names, test names)."""
    from mersemi.classes import CLASSES
    from mersemi.train.data import load_dataset

    ds = load_dataset(
        data / "acoustic.h5", data / "visual.h5", data / "text.h5", data / "manifest.csv"
    )
    lab, test = ds.labeled(), ds.test_labeled()
    for mod, key in (("acoustic", "A"), ("text", "T"), ("visual", "V")):
        d = work / "features" / key
        d.mkdir(parents=True, exist_ok=True)
        for r in np.concatenate([lab, test]):
            np.save(d / f"{ds.names[r]}.npy", ds.features[mod][r])
    corpus = {
        part: {str(ds.names[r]): {"emo": CLASSES[ds.labels[r]]} for r in rows}
        for part, rows in (("train_corpus", lab), ("test1_corpus", test))
    }
    np.savez(work / "label.npz", **corpus)
    return [str(n) for n in ds.names[lab]], [str(n) for n in ds.names[test]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mertools", required=True, help="MERTools' MER2024 folder")
    ap.add_argument("--data", required=True, help="mersemi synth (or feature) folder")
    ap.add_argument("--folds", required=True, help="JSON: list of validation name lists")
    ap.add_argument("--work", default=None, help="scratch folder (default: beside --out)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    root = Path(args.mertools).resolve()
    args.out = str(Path(args.out).resolve())
    args.folds = str(Path(args.folds).resolve())
    work = Path(args.work or Path(args.out).with_suffix(".work")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "label.npz").exists():
        write_inputs(Path(args.data), work)
    train_names = list(np.load(work / "label.npz", allow_pickle=True)["train_corpus"].item())
    pos = {n: i for i, n in enumerate(train_names)}
    val_sets = [[pos[n] for n in names] for names in json.loads(Path(args.folds).read_text())]
    hyper = work / "hyper.yaml"
    hyper.write_text(
        yaml.safe_dump(
            {
                "attention": {
                    "hidden_dim": args.hidden,
                    "dropout": args.dropout,
                    "grad_clip": -1.0,
                    "lr": args.lr,
                }
            }
        )
    )

    _stub_modules(lambda p: yaml.safe_load(Path(p).read_text()))
    _cpu_only()
    cfg = types.ModuleType("config")
    cfg.PATH_TO_FEATURES = {"MER2024": str(work / "features")}
    cfg.PATH_TO_LABEL = {"MER2024": str(work / "label.npz")}
    sys.modules["config"] = cfg
    sys.path.insert(0, str(root))
    os.chdir(root)
    from toolkit.dataloader.mer2024 import MER2024  # MERTools' own module

    def same_folds(self, whole_num, num_folder):
        everything = np.arange(whole_num)
        return [[np.setdiff1d(everything, v).tolist(), list(v)] for v in val_sets]

    MER2024.random_split_indexes = same_folds
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    sys.argv = [
        "main-release.py",
        "--dataset=MER2024",
        "--model=attention",
        "--feat_type=utt",
        "--audio_feature=A",
        "--text_feature=T",
        "--video_feature=V",
        f"--hyper_path={hyper}",
        f"--epochs={args.epochs}",
        f"--batch_size={args.batch_size}",
        f"--save_root={work / 'saved'}",
    ]
    g = runpy.run_path(str(root / "main-release.py"), run_name="__main__")
    folds = g["folder_save"]
    y = np.concatenate([f["eval_emolabels"] for f in folds])
    pred = np.concatenate([np.argmax(f["eval_emoprobs"], 1) for f in folds])
    from toolkit.utils.metric import average_folder_for_emos

    ty, tp = average_folder_for_emos(folds, "test1")
    out = {
        "cv_waf": float(f1_score(y, pred, average="weighted")),
        "cv_fold_mean_waf": float(np.mean([f["eval_emofscore"] for f in folds])),
        "test_waf": float(f1_score(ty, np.argmax(tp, 1), average="weighted")),
        "args": vars(args),
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
