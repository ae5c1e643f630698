"""Training benchmark on `mersemi synth` features (CPU), over seeds: Table 1 with mean ± std.

Per seed (the seed sets the folds, initialisation and batches; the features are the same):
- the MER2024 attention baseline (ours) and, with --mertools, MERTools' own code on the same
  folds (benchmarks/mertools_run.py, in a subprocess);
- contrastive pretraining with and without NEE;
- per variant (full and the paper's ablations): step 1 -> pseudo labels (agreement with the
  baseline) -> step 2, each scored with the paper's vote weights and with weights fitted on
  out-of-fold predictions (nested over folds);
- a pseudo-label audit of every confidence definition (count, share, precision per class and a
  threshold sweep) on the full variant's step 1, against the pool's hidden labels.

    python benchmarks/train_bench.py --seeds 0,1,2 --mertools /tmp/mertools/MER2024
    python benchmarks/train_bench.py --merge a.json b.json --out all.json   # seeds run apart
    python benchmarks/train_bench.py --data /tmp/spk --profile speakers --variants full \
        --selections paper,balanced,precision          # issue 22: the second synth profile
    python benchmarks/train_bench.py --variants full --prior-em --modality-dropout 0.1
        # issue 30: rows full_prior_em (re-vote, no training) and full_moddrop (full chain)
    python benchmarks/train_bench.py --seeds "" --search-trials 50 --search-seeds 6
        # issue 30: MERTools' baseline search, the row baseline_search_best

Every seed also runs the linear probe (Table 1's second row); every MR-CCL row has the
paper's, the fitted and the auto vote.

Sizes are scaled down for 2 shared CPU cores, each a departure from the defaults the
workflow uses: MR-CCL hidden = d_model = 32, 2 pretraining epochs, fine-tuning lr 1e-3 (step
2: 5e-4, the paper's 2:1 ratio) with at most 20 epochs and patience 3 (the defaults, lr 1e-4
with 40 / 5, take about 5x the epochs), baselines (ours and MERTools') 15 epochs instead of
100 (their best epoch on synth is 2-4); flags scale them back up. Seeds can run as separate
processes and be merged with --merge.
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import pandas as pd
from train_rounds import add_args, rounds_markdown
from train_search import add_arguments, run_search, search_markdown
from train_seed import run_seed
from train_table import markdown, summarise

from mersemi.demo.synth import SynthConfig, make_synth
from mersemi.demo.synth_speakers import SpeakerSynthConfig, make_speaker_synth
from mersemi.train.data import load_dataset
from mersemi.train.params import PseudoParams
from mersemi.train.selftrain import SCORES

VARIANTS = ("full", "no_pretrain", "no_nee", "no_pseudo", "no_oversample")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="benchmarks/results/train_bench_data")
    ap.add_argument("--n-unlabeled", type=int, default=SynthConfig.n_unlabeled)
    ap.add_argument(
        "--profile",
        choices=("default", "speakers"),
        default="default",
        help="synth profile written to --data when it holds no manifest",
    )
    ap.add_argument(
        "--selections",
        default="",
        help="also run the full variant's step 2 with these pseudo.selection options",
    )
    ap.add_argument("--budget", type=float, default=PseudoParams.budget, help="balanced")
    ap.add_argument("--out", default="benchmarks/results/train_bench.json")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--mertools", help="MERTools' MER2024 folder: run its own code too")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the step's default")
    ap.add_argument("--epochs", type=int, default=20, help="at most, per fine-tuning step")
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3, help="step 1 (step 2: half)")
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--baseline-hidden", type=int, default=128)
    ap.add_argument("--baseline-epochs", type=int, default=15)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--score", default=PseudoParams.score, choices=SCORES)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument(
        "--extra-scores",
        default="",
        help="also run the full variant's step 2 with pseudo labels of these scores",
    )
    ap.add_argument(
        "--prior-em",
        action="store_true",
        help="also the row full_prior_em: the full step 2 voted again with vote.prior em",
    )
    ap.add_argument(
        "--modality-dropout",
        type=float,
        default=0.0,
        metavar="P",
        help="> 0: also the row full_moddrop, the full chain with finetune.modality_dropout P",
    )
    add_args(ap)  # --rounds, --min-new, --agree, --min-agree (train_rounds.py)
    ap.add_argument("--merge", nargs="+", help="merge the seeds of these outputs into --out")
    add_arguments(ap)  # --search-trials N --search-seeds S: the baseline search
    args = ap.parse_args(argv)
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    out: dict = {"config": vars(args), "seeds": {}}

    def save():
        out.update(summarise(out["seeds"]))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        os.replace(tmp, args.out)
        Path(args.out).with_suffix(".md").write_text(
            markdown(out) + search_markdown(out) + rounds_markdown(out)
        )

    if args.merge:
        for f in args.merge:
            got = json.loads(Path(f).read_text())
            out["seeds"].update(got["seeds"])
            out.setdefault("configs", []).append(got["config"])
        save()
        print(markdown(out) + rounds_markdown(out))
        return 0

    data = Path(args.data)
    if not (data / "manifest.csv").exists():
        if args.profile == "speakers":
            make_speaker_synth(data, SpeakerSynthConfig(seed=0, n_unlabeled=args.n_unlabeled))
        else:
            make_synth(data, SynthConfig(seed=0, n_unlabeled=args.n_unlabeled))
    ds = load_dataset(
        data / "acoustic.h5", data / "visual.h5", data / "text.h5", data / "manifest.csv"
    )
    truth = pd.concat(
        [pd.read_csv(data / "unlabeled_truth.csv"), pd.read_csv(data / "test_labels.csv")]
    )
    out["config"].update(
        {"cpu_count": os.cpu_count(), "clips": len(ds), "pool": int(len(ds.pool()))}
    )
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        out["seeds"][str(seed)] = {}
        run_seed(args, ds, truth, seed, out["seeds"][str(seed)], save)
        save()
    if args.search_trials:
        run_search(args, ds, out, save)
    print(markdown(out) + search_markdown(out) + rounds_markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
