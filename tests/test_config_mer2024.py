"""The README's real-data command plans what it says: `snakemake -n --configfile
config.mer2024.yaml` on a folder laid out as config.mer2024.yaml names it takes nothing from
the demo's config.yaml (no `resources/` path, no demo hyperparameter) and every step runs the
paper's values, the documented defaults."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mersemi.classes import CLASSES
from mersemi.cli import build_parser
from mersemi.extract.cli import STAGES, stage_module
from mersemi.extract.common import stage_section
from mersemi.params import parse_params
from mersemi.train import params as tp

REPO = Path(__file__).resolve().parents[1]
STEP_CLASSES = {
    "pretrain": tp.PretrainParams,
    "baseline": tp.BaselineParams,
    "finetune": tp.FinetuneParams,
    "probe": tp.ProbeParams,
    "pseudo": tp.PseudoParams,
    "vote": tp.VoteParams,
    "feature-bench": tp.BenchParams,
}


def mer2024_layout(root: Path, config: dict, per_class: int = 5) -> None:
    """Empty videos (enough for planning), the label and transcript CSVs, and the model paths
    the config names, where config.mer2024.yaml says they go."""
    data = config["data"]
    labeled, unlabeled = root / data["labeled_dir"], root / data["unlabeled_dir"]
    labeled.mkdir(parents=True)
    unlabeled.mkdir(parents=True)
    labels = {f"sample_{c}_{k}": c for c in CLASSES for k in range(per_class)}
    pool = [f"sample_u{k}" for k in range(8)]
    for name in labels:
        (labeled / f"{name}.mp4").touch()
    for name in pool:
        (unlabeled / f"{name}.mp4").touch()
    rows = "".join(f"{n},{c}\n" for n, c in labels.items())
    (root / data["label_csv"]).write_text("name,discrete\n" + rows)
    texts = "".join(f"{n},你好\n" for n in [*labels, *pool])
    (root / data["transcript_csv"]).write_text("name,chinese\n" + texts)
    for section in (v for v in config["extract"].values() if isinstance(v, dict)):
        for key in ("checkpoint", "model_config"):
            if section.get(key):
                (root / section[key]).parent.mkdir(parents=True, exist_ok=True)
                (root / section[key]).touch()
        if section.get("model_dir"):
            (root / section["model_dir"]).mkdir(parents=True, exist_ok=True)


def dry_run(root: Path, per_class: int = 5):
    config = yaml.safe_load((REPO / "config.mer2024.yaml").read_text())
    mer2024_layout(root, config, per_class)
    # As the README says: from the checkout, where the demo's config.yaml lies too.
    for name in ("config.yaml", "config.mer2024.yaml"):
        shutil.copy(REPO / name, root)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", "config.mer2024.yaml", "-n", "-p", "--cores", "1"]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=600)
    return config, proc


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    config, proc = dry_run(tmp_path_factory.mktemp("mer2024 run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = re.findall(r"^Shell command: (.*)$", proc.stdout + proc.stderr, re.M)
    assert lines, proc.stdout[-2000:]
    return config, proc.stdout + proc.stderr, lines


def resolved(line: str):
    """(command, the params dataclass the step will build) of a planned `--params` line."""
    words = shlex.split(line.split(" 2> ")[0].lstrip("("))  # "(a && b) 2> log"
    command = words[3:5]  # python -m mersemi <group> <name>
    if command[0] == "check-models":
        command = ["extract", words[words.index("--stage") + 1]]
    given = json.loads(words[words.index("--params") + 1])
    if command[0] == "extract":
        return command, parse_params(stage_module(command[1]).Params, given)
    if command[1] == "finetune":  # the step is named in --params, as the CLI reads it
        return command, tp.parse_finetune(given)
    return command, tp.parse_params(STEP_CLASSES[command[1]], given)


def test_nothing_of_the_demo_is_planned(plan):
    _, out, _ = plan
    assert "resources/" not in out and "demo" not in out.replace("demo_seed", "")


def test_every_section_runs_the_paper_values(plan):
    config, _, lines = plan
    train, extract = config["train"], config["extract"]
    seen = set()
    for line in lines:
        if "--params" not in line or "/seed" in line:
            continue
        command, p = resolved(line)
        if command[0] == "extract":
            # the asr rule names the columns of the inventory's transcript CSV itself
            own = {k: getattr(p, k) for k in ("name_col", "text_col") if command[1] == "asr"}
            expected = parse_params(type(p), stage_section(extract, command[1]) | own)
        elif command[1] == "feature-bench":  # its rows run the probe and baseline jobs' params
            assert tp.parse_params(tp.ProbeParams, p.probe) == tp.parse_job(train, "probe")
            assert tp.parse_params(tp.BaselineParams, p.baseline) == tp.parse_job(train, "baseline")
            assert p.seeds == tp.train_seeds(train)
            expected = p
        elif command[1] in ("pseudo", "vote"):
            expected = tp.parse_params(type(p), train[command[1]])
        elif command[1] == "probe":  # the rule gives it the chain's seed
            expected = tp.parse_params(type(p), (train.get("probe") or {}) | {"seed": p.seed})
        else:
            step = command[1]
            sections = ["common", step] + (["step2"] if getattr(p, "step", 1) == 2 else [])
            merged = {k: v for s in sections for k, v in (train.get(s) or {}).items()}
            # what each Table 1 variant overrides (the rule adds it)
            merged |= {
                k: getattr(p, k) for k in ("nee", "pretrained", "oversample") if hasattr(p, k)
            }
            base = tp.step2_defaults() if getattr(p, "step", 1) == 2 else None
            expected = tp.parse_params(type(p), merged, base)
        assert p == expected, line
        seen.add(tuple(command) + ((p.step,) if command[1] == "finetune" else ()))
    assert seen >= {("extract", s) for s in STAGES} | {
        ("train", "pretrain"), ("train", "baseline"), ("train", "finetune", 1),
        ("train", "finetune", 2), ("train", "pseudo"), ("train", "vote"), ("train", "probe"),
        ("train", "feature-bench"),
    }  # fmt: skip


def test_the_paper_hyperparameters_in_particular(plan):
    _, _, lines = plan
    planned = {}
    for line in lines:
        if "--params" in line and "/train/full/" in line:
            command, p = resolved(line)
            planned[(command[1], getattr(p, "step", None))] = p
    s1, s2 = planned[("finetune", 1)], planned[("finetune", 2)]
    assert (s1.lr, s1.batch_size, s1.epochs, s1.patience, s1.oversample_target) == (
        1e-4, 512, 40, 5, 850,
    )  # fmt: skip
    assert (s2.lr, s2.oversample_target) == (5e-5, 1000)
    assert planned[("pseudo", None)].thresholds == {
        "neutral": 0.99, "angry": 0.99, "happy": 0.99, "sad": 0.99, "worried": 0.85,
        "surprise": 0.85,
    }  # fmt: skip
    assert planned[("vote", None)].weights == {"A": 0.7, "V": 0.5, "T": 0.4, "F": 0.7}
    visual = next(resolved(x)[1] for x in lines if "mersemi extract visual" in x)
    assert visual.model_name == "ViT-L-14" and visual.model_config is None
    for stage in ("faces", "visual", "acoustic", "text"):  # MERTools' features
        assert next(resolved(x)[1] for x in lines if f"extract {stage} " in x).recipe == "mertools"


def test_the_report_line_parses_with_real_models(plan):
    """models.tiny: false leaves no note; the line must still be what `mersemi report` takes
    (an empty quoted `--note` was no word at all: 'expected one argument')."""
    _, _, lines = plan
    (line,) = [x for x in lines if "mersemi report" in x]
    args = build_parser(["report"]).parse_args(shlex.split(line.split(" 2> ")[0])[3:])
    assert args.note == "" and args.out.endswith("report.html")


def test_too_few_clips_of_a_class_for_the_folds_stop_at_load(tmp_path):
    """5 folds and 2 labeled clips a class: one line at load (it was sklearn's traceback in
    finetune_step1, after the whole extraction)."""
    _, proc = dry_run(tmp_path, per_class=2)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("mersemi: error:")]
    assert "label-disdim.csv: train.baseline.folds=5 needs at least 5 labeled clips" in line
    assert "neutral 2" in line and "Shell command" not in proc.stdout
