"""Text features: a transformers language model (Baichuan2-13B-Base) on each clip's transcript.

Two recipes (`recipe`, docs/extraction.md):

`mertools` (default): MERTools' `extract_text_huggingface.py`, UTTERANCE level. The transcript
goes in verbatim (no strip, no whitespace collapsing); the **sum** of the last `layers` (4)
hidden states as MERTools' tuple has them (the inputs of the last 3 decoder layers and the
output after the final norm, taken explicitly: `hidden.LayerStates`, post_norm) is averaged
over the tokens `[start:end]`, where start/end come from MERTools' probe sentence (which tokens
the tokenizer adds around a sentence: none for Baichuan2, so all tokens count). fp16 on CUDA
(MERTools' `model.half()`), fp32 on CPU.

`mersemi`: whitespace runs collapsed and the transcript stripped; the **mean** of the last 4
entries of the model's `hidden_states` tuple, over the tokens without special tokens
(BOS/EOS/PAD; `<unk>` stays, it stands for real text); bf16 on CUDA.

No LM head is loaded (`llm_load` finds the base model whatever the directory's auto_map names).
Sentences of many clips share a batch: sorted by token count (longest first), right-padded,
with attention masks; in a causal model right padding never changes the real tokens' states,
so a batched result equals the one-sentence result (checked by the tests). An empty
transcript gives `valid=false` (reason `empty_transcript`) and a zero row (MERTools: zeros).
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
    check_recipe,
    departures,
    meta_params,
    progress,
    read_shard,
    reasons_path,
    recipe_precision,
    select_device,
    write_feature_shard,
)
from .hidden import LayerStates
from .llm_load import MEMORY, load_base_model, load_tokenizer
from .models import load_dtype, require_model_dir

log = logging.getLogger(__name__)

STAGE = "text"
HELP = "transcripts (CSV name,text,source) -> LLM features, last 4 layers pooled over tokens"
MERTOOLS = {"layers": 4}
PROBE = "今天天气真好"  # MERTools' find_start_end_pos sentence (no spaces in it)


@dataclass
class Params(StageParams):
    recipe: str = "mertools"  # mertools | mersemi (docs/extraction.md)
    model_dir: str | None = None  # transformers model directory (config, weights, tokenizer)
    trust_remote_code: bool = False  # Baichuan2 ships its model code: set true for it
    layers: int = 4  # mertools: sum, mersemi: mean of the last N hidden states
    batch_size: int = 32  # sentences per forward pass
    max_tokens: int = 512  # longer transcripts are truncated (logged)
    text_col: str = "text"  # column of the --transcripts CSV
    # single | multi_gpu | int8 | int4 | cpu_offload (llm_load.MEMORY; GPU memory per plan
    # for Baichuan2-13B in docs/extraction_models.md)
    memory: str = "single"

    def check(self) -> None:
        check_recipe(STAGE, self.recipe)
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
        self.precision = recipe_precision(params.recipe, params.precision, "fp16")
        self.dtype = load_dtype(self.device, self.precision)
        self.departures = departures(STAGE, params, MERTOOLS)
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
        if params.recipe == "mertools":
            self.layer_list = decoder_layers(self.model, int(config.num_hidden_layers))
            self.start, self.end = probe_start_end(tok)
            log.info("%s: token span [%s:%s] (MERTools' probe)", STAGE, self.start, self.end)

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
        if self.params.recipe == "mertools":
            return self._forward_mertools(ids, mask)
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

    def _forward_mertools(self, ids, mask) -> tuple[np.ndarray, np.ndarray]:
        """Sum of the last `layers` states (post-norm), mean over tokens [start:end] of each
        sentence's own tokens (right padding: `end` counts back from its last real token)."""
        torch = self._torch
        n_real = mask.sum(1)
        pos = torch.arange(ids.shape[1], device=mask.device)[None, :]
        lo = torch.full_like(n_real, self.start)
        hi = n_real + (self.end or 0)
        keep = ((pos >= lo[:, None]) & (pos < hi[:, None]) & mask.bool()).double()
        with torch.inference_mode(), LayerStates(self.layer_list) as cap:
            out = self.model(input_ids=ids, attention_mask=mask)
            last = cap.last(self.params.layers, out.last_hidden_state, post_norm=True)
            states = torch.stack([s.float() for s in last]).sum(0).double()
            keep = keep.to(states.device)
            n = keep.sum(1)
            vecs = (states * keep[..., None]).sum(1) / n.clamp(min=1)[:, None]
        return vecs.cpu().numpy().astype(np.float32), n.long().cpu().numpy()


def decoder_layers(model, n_layers: int):
    """The model's stack of decoder layers: the outermost ModuleList of `n_layers` modules."""
    import torch

    for _, m in model.named_modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers:
            return m
    raise InputError(f"{STAGE}: no list of {n_layers} layers found in {type(model).__name__}")


def probe_start_end(tok) -> tuple[int, int | None]:
    """MERTools' `find_start_end_pos`: which tokens of a sentence are its text. `start` in
    0..2 (tokens the tokenizer puts before it), `end` None, -1 or -2 (tokens after it)."""
    ids = tok(PROBE)["input_ids"]

    def text(a, b=None):
        return tok.decode(ids[a:b]).replace(" ", "")

    start = 0
    for start in range(3):
        out = text(start)
        if out == PROBE:
            return start, None
        if out.startswith(PROBE):
            break
    for end in (-1, -2):
        if text(start, end) == PROBE:
            return start, end
    raise InputError(
        f"{STAGE}: cannot find the sentence's tokens in {ids} (MERTools' probe {PROBE!r})"
    )


def add_arguments(parser) -> None:
    parser.add_argument(
        "--transcripts",
        required=True,
        help="transcript CSV of this shard (the transcripts step's output: name,text,source)",
    )


def read_transcripts(
    path, names: Sequence[str], text_col: str, verbatim: bool = False
) -> list[str]:
    """The transcript of every clip of the shard, in shard order ('' when empty).

    `verbatim` (recipe mertools): as written; else whitespace runs collapsed and stripped."""
    from ..tables import read_csv_table

    df = read_csv_table(path, ["name", text_col], "transcript CSV")
    table = {
        unicodedata.normalize("NFC", n.strip()): str(t) if verbatim else " ".join(str(t).split())
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
    texts = read_transcripts(
        args.transcripts, names, params.text_col, verbatim=params.recipe == "mertools"
    )
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
    if params.recipe == "mertools":
        layers = f"sum of last {params.layers} hidden states (post final norm)"
        pooling = f"mean over tokens [{embedder.start}:{embedder.end}] (MERTools), verbatim text"
    else:
        layers = f"mean of last {params.layers} hidden states"
        pooling = "mean over tokens without special tokens, whitespace collapsed"
    meta = FeatureMeta(
        modality="text",
        model=str(embedder.model_dir),
        layers=layers,
        pooling=pooling,
        dim=embedder.dim,
        params={
            **meta_params(params),
            "model_dir": str(embedder.model_dir),
            "precision": str(embedder.dtype).removeprefix("torch."),
            "departures": embedder.departures,
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
