"""Text features: a transformers language model (Baichuan2-13B-Base) on each clip's transcript.

Recipe (MER2024 baseline): tokenize the sentence, run the base model (no LM head is loaded;
`llm_load` finds it whatever the directory's auto_map names) with `output_hidden_states`,
average the last `layers` (4) hidden states, then average over the sentence's tokens without
special tokens (BOS/EOS/PAD; `<unk>` stays, it stands for real text) -> hidden size (5120 for
Baichuan2-13B).

Sentences of many clips share a batch: sorted by token count (longest first), right-padded,
with attention masks; in a causal model right padding never changes the real tokens' states,
so a batched result equals the one-sentence result (checked by the tests). An empty
transcript gives `valid=false` (reason `empty_transcript`).
"""

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..store import FeatureMeta
from .common import (
    Outcome,
    StageParams,
    meta_params,
    progress,
    read_shard,
    reasons_path,
    select_device,
    write_feature_shard,
)
from .llm_load import MEMORY, load_base_model, load_tokenizer
from .models import load_dtype, require_model_dir

log = logging.getLogger(__name__)

STAGE = "text"
HELP = "transcripts (ASR stage CSV) -> LLM features, mean of last 4 layers over tokens"


@dataclass
class Params(StageParams):
    model_dir: str | None = None  # transformers model directory (config, weights, tokenizer)
    trust_remote_code: bool = False  # Baichuan2 ships its model code: set true for it
    layers: int = 4  # mean of the last N hidden states
    batch_size: int = 32  # sentences per forward pass
    max_tokens: int = 512  # longer transcripts are truncated (logged)
    text_col: str = "text"  # column of the --transcripts CSV
    # single | multi_gpu | int8 | int4 | cpu_offload (llm_load.MEMORY; GPU memory per plan
    # for Baichuan2-13B in docs/extraction_models.md)
    memory: str = "single"

    def check(self) -> None:
        if self.layers < 1 or self.batch_size < 1 or self.max_tokens < 1:
            raise InputError(f"{STAGE}: layers, batch_size and max_tokens must be >= 1")
        if self.memory not in MEMORY:
            raise InputError(
                f"{STAGE}: memory must be one of {sorted(MEMORY)}, got {self.memory!r}"
            )


class TextEmbedder:
    """A tokenizer + base model loaded once; `embed(texts)` -> (vectors, token counts)."""

    def __init__(self, params: Params):
        params.check()
        self.params = params
        path = require_model_dir(
            STAGE,
            "model_dir",
            params.model_dir,
            ["config.json", ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")],
        )
        import torch

        self._torch = torch
        self.device = select_device(params.device, one_gpu=params.memory != "multi_gpu")
        self.dtype = load_dtype(self.device, params.precision)
        trust = params.trust_remote_code
        tok = load_tokenizer(path, trust)
        self.model, config, self.input_device = load_base_model(
            path, trust, self.dtype, self.device, params.memory
        )
        if tok.pad_token is None:
            tok.pad_token = tok.unk_token or tok.eos_token
        tok.padding_side = "right"
        self.tokenizer = tok
        # BOS/EOS/PAD/... are dropped from the token mean; <unk> stands for real content.
        self.special_ids = sorted(set(tok.all_special_ids) - {tok.unk_token_id})
        self.dim = int(config.hidden_size)
        self.model_dir = Path(path)
        self.batch_size = params.batch_size  # halved on CUDA out-of-memory (kept for the job)
        n_states = int(config.num_hidden_layers) + 1
        if params.layers > n_states:
            raise InputError(f"{STAGE}: layers={params.layers} but the model has {n_states} states")

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, hidden) float32 sentence vectors and the number of content tokens per sentence.

        A sentence with no content token (empty after tokenization) gets a zero row and 0."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.int64)
        if not texts:
            return out, counts
        lengths = self.token_counts(texts)
        order = sorted(range(len(texts)), key=lambda k: lengths[k], reverse=True)
        long = sum(n > self.params.max_tokens for n in lengths)
        if long:
            log.warning("%d transcript(s) truncated to %d tokens", long, self.params.max_tokens)
        pos = 0
        while pos < len(order):
            idx = order[pos : pos + self.batch_size]
            try:
                vecs, n = self._forward([texts[k] for k in idx])
            except self._torch.cuda.OutOfMemoryError:
                self._back_off(max(lengths[k] for k in idx))
                continue  # the same clips again, in a smaller batch
            out[idx] = vecs
            counts[idx] = n
            pos += len(idx)
        return out, counts

    def _back_off(self, tokens: int) -> None:
        """Halve the batch after a CUDA out-of-memory error; one sentence that does not fit is
        a configuration problem (max_tokens, memory plan)."""
        self._torch.cuda.empty_cache()
        if self.batch_size == 1:
            raise InputError(
                f"extract {STAGE}: out of GPU memory with one sentence of {tokens} tokens -> "
                "lower extract.text.max_tokens or choose a memory plan (memory: int8, int4, "
                "multi_gpu, cpu_offload)"
            )
        self.batch_size //= 2
        log.warning("CUDA out of memory: batch size halved to %d, retrying", self.batch_size)

    def _forward(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.params.max_tokens,
            return_tensors="pt",
        )
        ids = enc["input_ids"].to(self.input_device)
        mask = enc["attention_mask"].to(self.input_device)
        special = torch.isin(ids, torch.tensor(self.special_ids, device=self.input_device))
        keep = (mask.bool() & ~special).float()
        with torch.inference_mode():
            hs = self.model(
                input_ids=ids, attention_mask=mask, output_hidden_states=True
            ).hidden_states
            states = torch.stack(hs[-self.params.layers :]).float().mean(0)
            n = keep.sum(1)
            vecs = (states * keep[..., None]).sum(1) / n.clamp(min=1)[:, None]
        return vecs.cpu().numpy().astype(np.float32), n.long().cpu().numpy()


def add_arguments(parser) -> None:
    parser.add_argument(
        "--transcripts",
        required=True,
        help="transcript CSV of this shard (the ASR stage's output: name,text,source)",
    )


def read_transcripts(path, names: Sequence[str], text_col: str) -> list[str]:
    """The transcript of every clip of the shard, in shard order ('' when empty)."""
    from ..tables import read_csv_table

    df = read_csv_table(path, ["name", text_col], "transcript CSV")
    table = {
        unicodedata.normalize("NFC", n.strip()): " ".join(str(t).split())
        for n, t in zip(df["name"], df[text_col], strict=True)
    }
    missing = [n for n in names if n not in table]
    if missing:
        raise InputError(
            f"transcript CSV {path}: {len(missing)} clip(s) of the shard missing, e.g. "
            f"{missing[:3]} (was it made from the same shard?)"
        )
    return [table[n] for n in names]


def upstream_failures(transcripts) -> dict[str, str]:
    """name -> reason of the clips the ASR stage could not read (its reasons sidecar, when
    there is one), other than an empty transcript."""
    path = reasons_path(transcripts)
    if not path.is_file():
        return {}
    from ..tables import read_csv_table

    df = read_csv_table(path, ["name", "valid", "reason"], "reasons CSV")
    bad = df[(df["valid"].astype(str) != "True") & (df["reason"] != "empty_transcript")]
    return dict(zip(bad["name"], bad["reason"], strict=True))


def run(args, params: Params) -> None:
    clips = read_shard(args.shard)
    names = [c.name for c in clips]
    texts = read_transcripts(args.transcripts, names, params.text_col)
    upstream = upstream_failures(args.transcripts)
    embedder = TextEmbedder(params)
    outcome = Outcome(names)
    features = np.zeros((len(names), embedder.dim), dtype=np.float32)
    todo = []
    for i, t in enumerate(texts):
        if t:
            todo.append(i)
        elif names[i] in upstream:  # a broken video is decode_error here too, not "empty"
            outcome.fail(i, upstream[names[i]], "from the asr stage")
        else:
            outcome.fail(i, "empty_transcript")
    # Sort the whole shard by length once (the embedder sorts within each call too), and
    # feed it in slices so the progress bar moves.
    step = embedder.params.batch_size * 8
    bar = progress(total=len(todo), desc="text", unit="clip")
    for start in range(0, len(todo), step):
        idx = todo[start : start + step]
        vecs, counts = embedder.embed([texts[i] for i in idx])
        for i, v, n in zip(idx, vecs, counts, strict=True):
            if n == 0:
                outcome.fail(i, "empty_transcript", "no content token after tokenization")
            else:
                features[i] = v
        bar.update(len(idx))
    bar.close()
    meta = FeatureMeta(
        modality="text",
        model=str(embedder.model_dir),
        layers=f"mean of last {params.layers} hidden states",
        pooling="mean over tokens without special tokens",
        dim=embedder.dim,
        params={
            **meta_params(params),
            "model_dir": str(embedder.model_dir),
            "precision": str(embedder.dtype).removeprefix("torch."),
        },
    )
    write_feature_shard(args.out, meta, outcome, features, STAGE)


EXPECTED_DIM = 5120  # Baichuan2-13B


def check_model(params: Params) -> list:
    """Config, tokenizer (a sample encoded), weight files and the model's own code, without
    loading weights; the hidden size is reported (5120 for Baichuan2-13B)."""
    from .llm_load import base_model_class, weight_files
    from .modelcheck import bad, ok, package_check

    checks = [package_check(STAGE, m) for m in ("torch", "transformers")]
    if params.memory in ("int8", "int4"):
        checks.append(package_check(STAGE, "bitsandbytes", "bitsandbytes (extra quant)"))
    if params.memory != "single":
        checks.append(package_check(STAGE, "accelerate"))
    if not all(c.ok for c in checks):
        return checks

    def failed(item: str, e: InputError):
        cause, _, fix = str(e).partition(" -> ")
        return [*checks, bad(STAGE, item, cause, fix or "see docs/extraction_models.md")]

    try:
        path = require_model_dir(STAGE, "model_dir", params.model_dir, ["config.json"])
    except InputError as e:
        return failed("model_dir", e)
    from transformers import AutoConfig

    try:
        tok = load_tokenizer(path, params.trust_remote_code)
        ids = tok("情绪识别，测试。")["input_ids"]
    except InputError as e:
        return failed("tokenizer", e)
    checks.append(
        ok(STAGE, "tokenizer", f"{type(tok).__name__}, {len(tok)} tokens, sample {ids[:6]}")
    )
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=params.trust_remote_code)
        cls, _ = base_model_class(path, config, params.trust_remote_code)
        files = weight_files(path)
    except InputError as e:
        return failed("model", e)
    except (OSError, ValueError, ImportError) as e:
        return [*checks, bad(STAGE, "config", f"{path}: {e}", "check config.json / "
                             "extract.text.trust_remote_code")]  # fmt: skip
    name = cls.__name__ if cls is not None else "AutoModel"
    checks.append(ok(STAGE, "model", f"{path}: {name}, {len(files)} weight file(s)"))
    n_states = int(config.num_hidden_layers) + 1
    if params.layers > n_states:
        checks.append(bad(STAGE, "layers", f"layers={params.layers}, model has {n_states} "
                          "hidden states", "lower extract.text.layers"))  # fmt: skip
    dim = int(config.hidden_size)
    note = "" if dim == EXPECTED_DIM else f" (Baichuan2-13B has {EXPECTED_DIM})"
    checks.append(ok(STAGE, "dim", f"{dim}{note}"))
    return checks
