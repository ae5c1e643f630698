"""`mersemi demo`: a small deterministic demo dataset in MER2024 layout.

    DIR/labeled/sample_XXXXXXXX.mp4     labeled clips
    DIR/unlabeled/sample_XXXXXXXX.mp4   unlabeled clips, with the test clips hidden among them
    DIR/labels.csv                      name,discrete   (labeled clips)
    DIR/test_labels.csv                 name,discrete   (the test clips inside unlabeled/)
    DIR/transcripts.csv                 name,chinese    (every clip)
    DIR/demo_truth.csv                  name,split,discrete for every clip (demo only: lets a
                                        report audit pseudo labels; MER2024 has no such file)
    DIR/demo.json                       the parameters that made it

Clips are 2-3 s of 160x160 H.264 video at 12 fps with a 16 kHz mono AAC track, made from the face
photographs shipped with scikit-image, with per-class visual and audio cues (`media`) and
per-class Chinese wording. The same seed and counts give byte-identical files with the same
ffmpeg binary (single-threaded encoders, bitexact flags, no metadata).
"""

import argparse
import concurrent.futures
import json
import logging
import os
import subprocess
import tempfile
import time
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, write_csv_atomic
from ..classes import CLASSES, MER2024_TRAIN_COUNTS
from ..errors import InputError
from ..ffmpeg_bin import ffmpeg_exe
from . import media

log = logging.getLogger(__name__)

DEMO_VERSION = 1  # bump when the generated content changes

# A few sentence templates per class; {who} and {what} are filled per clip.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "{who}明天上午九点去公司开会，{what}的资料已经准备好了。",
        "{who}说这件事按照原来的安排进行就可以。",
        "嗯，{what}放在桌子上，{who}等一下再看。",
        "{who}平时一般坐地铁上班，大概四十分钟。",
    ),
    "angry": (
        "{who}到底想怎么样？{what}的事我已经忍了很久了！",
        "你们太过分了，{who}凭什么这样对我！",
        "别再说了，{what}这种事简直气死我了！",
        "{who}骗了我一次又一次，我绝对不会原谅！",
    ),
    "happy": (
        "太好了！{who}终于成功了，{what}真让人开心！",
        "哈哈，{who}今天特别高兴，我们一起去庆祝吧！",
        "收到{what}的好消息，我开心得不得了。",
        "{who}笑着说，这是今年最快乐的一天！",
    ),
    "sad": (
        "{who}走了以后，我一个人真的很难过。",
        "{what}没有了，我心里好痛，忍不住想哭。",
        "对不起，{who}再也回不来了……",
        "这些年{who}一直很孤单，想起来就伤心。",
    ),
    "worried": (
        "{who}这么晚还没回来，我真担心出什么事。",
        "{what}怎么办啊，万一来不及了可怎么办？",
        "我有点不安，{who}最近的情况好像不太好。",
        "{who}的病一直没好，我心里七上八下的。",
    ),
    "surprise": (
        "什么？{who}竟然已经结婚了？",
        "天哪！{what}居然是真的，我完全没想到！",
        "不会吧，{who}怎么突然来了？",
        "真的假的？{what}这么快就出来了？",
    ),
}
WHO = ("我", "他", "她", "我们", "你妈妈", "老王", "小李", "张经理", "我哥哥", "那个孩子")
WHAT = ("项目", "考试", "房子", "工作", "比赛", "合同", "手术", "那封信", "那笔钱", "面试")
assert set(TEMPLATES) == set(CLASSES)


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    n_labeled: int = 60
    n_unlabeled: int = 150
    n_test: int = 30


@dataclass(frozen=True)
class Clip:
    index: int  # position in the plan; with the seed it fixes the clip's content
    name: str
    split: str  # train | unlabeled | test
    label: str

    @property
    def folder(self) -> str:
        return "labeled" if self.split == "train" else "unlabeled"


def class_counts(n: int, minimum: int) -> dict[str, int]:
    """Split n clips over the classes like MER2024's training set, each at least `minimum`.

    Largest-remainder rounding; `minimum` is lowered when n cannot give every class that many.
    """
    minimum = min(minimum, n // len(CLASSES))
    w = np.array([MER2024_TRAIN_COUNTS[c] for c in CLASSES], float)
    counts = np.full(len(CLASSES), minimum)
    rest = n - counts.sum()
    share = w / w.sum() * n
    # Give each class its proportional share where that exceeds the minimum, then round.
    extra = np.clip(share - minimum, 0, None)
    extra = extra / extra.sum() * rest if extra.sum() > 0 else np.zeros_like(extra)
    base = np.floor(extra).astype(int)
    left = rest - base.sum()
    order = np.argsort(-(extra - base), kind="stable")
    base[order[:left]] += 1
    return dict(zip(CLASSES, (counts + base).tolist(), strict=True))


def plan(cfg: DemoConfig) -> list[Clip]:
    """Every clip's name, split and class. Names are random, so they reveal neither."""
    if min(cfg.n_labeled, cfg.n_unlabeled, cfg.n_test) < 0:
        raise InputError("clip counts must not be negative")
    if cfg.n_labeled < 2 * len(CLASSES):
        raise InputError(f"--n-labeled must be at least {2 * len(CLASSES)} (two per class)")
    rng = np.random.default_rng([cfg.seed, 0])
    splits = []
    for split, n, minimum in (
        ("train", cfg.n_labeled, 5),
        ("unlabeled", cfg.n_unlabeled, 1),
        ("test", cfg.n_test, 2),
    ):
        labels = [c for c, k in class_counts(n, minimum).items() for _ in range(k)]
        splits += [(split, labels[i]) for i in rng.permutation(len(labels))]
    numbers = rng.choice(10**7, size=len(splits), replace=False)
    return [
        Clip(i, f"sample_{int(num):08d}", split, label)
        for i, ((split, label), num) in enumerate(zip(splits, numbers, strict=True))
    ]


def transcript(label: str, rng: np.random.Generator) -> str:
    template = TEMPLATES[label][int(rng.integers(len(TEMPLATES[label])))]
    return template.format(
        who=WHO[int(rng.integers(len(WHO)))], what=WHAT[int(rng.integers(len(WHAT)))]
    )


def _clip_rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for a clip's media and its transcript."""
    return np.random.default_rng([seed, 1, index]), np.random.default_rng([seed, 2, index])


def _write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = np.round(audio * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(media.SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def ffmpeg_command(wav: Path, out: Path) -> list[str]:
    """Encode raw RGB frames on stdin plus a wav file into mp4 (H.264 + AAC), reproducibly."""
    s = media.FRAME_SIZE
    # fmt: off
    return [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{s}x{s}", "-r", str(media.FPS),
        "-i", "pipe:0",
        "-i", str(wav),
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-g", str(2 * media.FPS),
        "-c:a", "aac", "-b:a", "48k", "-ar", str(media.SAMPLE_RATE), "-ac", "1",
        "-threads", "1",
        "-map_metadata", "-1", "-fflags", "+bitexact",
        "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-f", "mp4", str(out),
    ]
    # fmt: on


def make_clip(clip: Clip, seed: int, out_dir: Path, tmp_dir: Path) -> Path:
    """Render and encode one clip to out_dir/<folder>/<name>.mp4 (atomically)."""
    rng = _clip_rngs(seed, clip.index)[0]
    n_frames = int(rng.integers(2 * media.FPS, 3 * media.FPS + 1))  # 2.0-3.0 s
    face = media.pick_face(rng)
    frames = media.render_frames(clip.label, face, n_frames, rng)
    n_samples = round(n_frames * media.SAMPLE_RATE / media.FPS)
    audio = media.render_audio(clip.label, n_samples, rng)
    wav = tmp_dir / f"{clip.name}.wav"
    _write_wav(wav, audio)
    final = out_dir / clip.folder / f"{clip.name}.mp4"
    with atomic_path(final) as tmp:
        proc = subprocess.run(
            ffmpeg_command(wav, tmp), input=frames.tobytes(), capture_output=True, check=False
        )
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RuntimeError(f"ffmpeg failed on {final.name} (exit {proc.returncode}): {err}")
    wav.unlink()
    return final


def _clear_stale(out: Path, keep: set[Path]) -> None:
    """Remove videos of an earlier demo run that this run does not make (e.g. other counts)."""
    stale = [
        p
        for sub in ("labeled", "unlabeled")
        if (out / sub).is_dir()
        for p in sorted((out / sub).iterdir())
        if p not in keep and not p.name.startswith(".")
    ]
    if not stale:
        return
    if not (out / "demo.json").is_file():
        raise InputError(
            f"demo output {out} already holds {len(stale)} other file(s) (e.g. {stale[0]}) and "
            "is not an earlier demo output; choose an empty folder"
        )
    for p in stale:
        p.unlink()
    log.info("removed %d stale clip(s) of an earlier demo run", len(stale))


def make_demo(out: str | os.PathLike, cfg: DemoConfig = DemoConfig(), jobs: int = 0) -> list[Clip]:
    """Write the demo dataset into `out` and return its plan."""
    out = Path(out)
    t0 = time.perf_counter()
    clips = plan(cfg)
    for sub in ("labeled", "unlabeled"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _clear_stale(out, {out / c.folder / f"{c.name}.mp4" for c in clips})
    # The config goes last, as the completion marker; an interrupted run leaves none.
    (out / "demo.json").unlink(missing_ok=True)

    jobs = jobs or min(4, os.cpu_count() or 1)
    with (
        tempfile.TemporaryDirectory(prefix="mersemi-demo-") as tmp,
        concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool,
    ):
        futures = [pool.submit(make_clip, c, cfg.seed, out, Path(tmp)) for c in clips]
        for f in futures:
            f.result()

    by_split = {s: [c for c in clips if c.split == s] for s in ("train", "unlabeled", "test")}

    def write(rows, columns: list[str], filename: str) -> None:
        write_csv_atomic(pd.DataFrame(sorted(rows), columns=columns), out / filename)

    write(((c.name, c.label) for c in by_split["train"]), ["name", "discrete"], "labels.csv")
    write(((c.name, c.label) for c in by_split["test"]), ["name", "discrete"], "test_labels.csv")
    texts = ((c.name, transcript(c.label, _clip_rngs(cfg.seed, c.index)[1])) for c in clips)
    write(texts, ["name", "chinese"], "transcripts.csv")
    write(
        ((c.name, c.split, c.label) for c in clips), ["name", "split", "discrete"], "demo_truth.csv"
    )
    counts = {s: {k: sum(c.label == k for c in cs) for k in CLASSES} for s, cs in by_split.items()}
    info = {
        "demo_version": DEMO_VERSION,
        **asdict(cfg),
        "frame_size": media.FRAME_SIZE,
        "fps": media.FPS,
        "sample_rate": media.SAMPLE_RATE,
        "class_counts": counts,
    }
    with atomic_path(out / "demo.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info(
        "demo %s: %d labeled, %d unlabeled + %d test clips in %.1f s (%d threads)",
        out,
        len(by_split["train"]),
        len(by_split["unlabeled"]),
        len(by_split["test"]),
        time.perf_counter() - t0,
        jobs,
    )
    return clips


def ensure_demo(out: str | os.PathLike, seed: int = 0) -> None:
    """Write the demo into `out` unless it is there already, complete and of this seed and
    version. The workflow calls this when it loads, then reads `out` like a user's folders."""
    info = Path(out) / "demo.json"
    if info.is_file():
        made = json.loads(info.read_text(encoding="utf-8"))
        if made.get("seed") == seed and made.get("demo_version") == DEMO_VERSION:
            return
    log.info("writing the demo dataset into %s (seed %d)", out, seed)
    make_demo(out, DemoConfig(seed=seed))


def register(sub: argparse._SubParsersAction) -> None:
    d = DemoConfig()
    p = sub.add_parser("demo", help="write the small deterministic demo dataset (MER2024 layout)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--n-labeled", type=int, default=d.n_labeled)
    p.add_argument("--n-unlabeled", type=int, default=d.n_unlabeled)
    p.add_argument("--n-test", type=int, default=d.n_test, help="test clips hidden in unlabeled/")
    p.add_argument("--jobs", type=int, default=0, help="encoder threads (0: min(4, CPUs))")
    p.set_defaults(func=_demo)


def _demo(args) -> None:
    cfg = DemoConfig(args.seed, args.n_labeled, args.n_unlabeled, args.n_test)
    make_demo(args.out, cfg, args.jobs)
