"""The text stage's work: a language model over a shard's transcripts, pooled per clip."""

import logging
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ...device import select_device
from ...errors import InputError
from ...params import check_params
from ...store import FeatureMeta
from ...tables import read_csv_table
from ..common import (
    ALL_LAYERS,
    Outcome,
    combine_layers,
    departures,
    meta_params,
    progress,
    read_shard,
    reasons_path,
    recipe_precision,
    stored_layers_note,
    write_feature_shard,
)
from ..hidden import LayerStates
from ..models import load_dtype, require_model_dir
from . import MERTOOLS, STAGE, Params
from .family import describe_layers, detect_family, hidden_state_indices
from .llm_load import load_base_model, load_tokenizer, read_json, tokenizer_kind

log = logging.getLogger(__name__)


PROBE = "今天天气真好"  # MERTools' find_start_end_pos sentence (no spaces in it)


class TextEmbedder:
    """A tokenizer + base model loaded once; `embed(texts)` -> (vectors, token counts);
    `embed_layers(texts)` -> those and, with `layers: all`, every hidden state's pooled
    vector (N, n_layers + 1, hidden)."""

    def __init__(self, params: Params):
        check_params(params, STAGE)
        self.params = params
        path = require_model_dir(
            STAGE,
            "model_dir",
            params.model_dir,
            ["config.json", ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")],
        )
        self.device = select_device(params.device, one_gpu=params.memory != "multi_gpu")
        self.precision = recipe_precision(params.recipe, params.precision, "fp16")
        self.dtype = load_dtype(self.device, self.precision)
        trust = params.trust_remote_code
        config_json = read_json(path / "config.json")
        self.family = detect_family(config_json, path, params.family)
        self.tokenizer_kind = tokenizer_kind(path, params.tokenizer, config_json.get("model_type"))
        tok = load_tokenizer(path, trust, self.tokenizer_kind)
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
        self.n_layers = int(config.num_hidden_layers)
        # `layers: all` pools every state (`taken`) and combines MERTools' last 4 (`indices`)
        self.all_layers = params.layers == ALL_LAYERS
        self.taken = hidden_state_indices(params.layers, self.n_layers)
        default = hidden_state_indices(MERTOOLS["layers"], self.n_layers)
        self.indices = default if self.all_layers else self.taken
        self.n_stored = len(self.taken) if self.all_layers else 0
        mertools = sorted(self.indices) == default
        shown = SimpleNamespace(recipe=params.recipe, layers=4 if mertools else params.layers)
        self.departures = departures(STAGE, shown, MERTOOLS)
        self.max_tokens = params.max_tokens
        if self.family == "encoder":  # absolute positions: no sentence longer than the table
            limits = [getattr(config, "max_position_embeddings", None), tok.model_max_length]
            self.max_tokens = min([params.max_tokens, *(n for n in limits if n and n < 10**6)])
        log.info("%s: %s model %s, tokenizer %s (%s), hidden states %s of 0..%d", STAGE,
                 self.family, type(self.model).__name__, self.tokenizer_kind, type(tok).__name__,
                 self.indices, self.n_layers)  # fmt: skip
        if params.recipe == "mertools":
            self.layer_list = decoder_layers(self.model, self.n_layers)
            self.start, self.end = probe_start_end(tok)
            log.info("%s: token span [%s:%s] (MERTools' probe)", STAGE, self.start, self.end)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, hidden) float32 sentence vectors and the number of content tokens per sentence.

        A sentence with no content token (empty after tokenization) gets a zero row and 0."""
        vecs, counts, _ = self.embed_layers(texts)
        return vecs, counts

    def embed_layers(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`embed`'s vectors and counts, and the pooled vectors (N, K, hidden) they come from:
        with `layers: all` each state's (K = n_layers + 1; the vector is their sum, mersemi:
        mean, over MERTools' last 4, as pooling is linear), else the vector itself (K = 1)."""
        k = self.n_stored or 1
        out = np.zeros((len(texts), k, self.dim), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.int64)
        if not texts:
            return out[:, 0], counts, out
        lengths = self.token_counts(texts)
        order = sorted(range(len(texts)), key=lambda k: lengths[k], reverse=True)
        long = sum(n > self.max_tokens for n in lengths)
        if long:
            log.warning("%d transcript(s) truncated to %d tokens", long, self.max_tokens)
        pos = 0
        while pos < len(order):
            idx = order[pos : pos + self.batch_size]
            try:
                vecs, n = self._forward([texts[k] for k in idx])
            except torch.cuda.OutOfMemoryError:
                self._back_off(max(lengths[k] for k in idx))
                continue  # the same clips again, in a smaller batch
            out[idx] = vecs
            counts[idx] = n
            pos += len(idx)
        if not self.all_layers:
            return out[:, 0], counts, out
        return combine_layers(out, self.indices, self.params.recipe), counts, out

    def _back_off(self, tokens: int) -> None:
        """Halve the batch after a CUDA out-of-memory error; one sentence that does not fit is
        a configuration problem (max_tokens, memory plan)."""
        torch.cuda.empty_cache()
        if self.batch_size == 1:
            raise InputError(
                f"extract {STAGE}: out of GPU memory with one sentence of {tokens} tokens -> "
                "lower extract.text.max_tokens or choose a memory plan (memory: int8, int4, "
                "multi_gpu, cpu_offload)"
            )
        self.batch_size //= 2
        log.warning("CUDA out of memory: batch size halved to %d, retrying", self.batch_size)

    def _forward(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
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
            states = torch.stack([hs[i] for i in self.taken]).float()
            states = states if self.all_layers else states.mean(0, keepdim=True)
            n = keep.sum(1)
            vecs = (states * keep[..., None]).sum(2) / n.clamp(min=1)[:, None]
        return vecs.transpose(0, 1).cpu().numpy().astype(np.float32), n.long().cpu().numpy()

    def _forward_mertools(self, ids, mask) -> tuple[np.ndarray, np.ndarray]:
        """Sum of the `layers` states (MERTools' tuple: the layer inputs, then
        `last_hidden_state`, after the final norm where the model has one), mean over tokens
        [start:end] of each sentence's own tokens (right padding: `end` counts back from its
        last real token)."""
        n_real = mask.sum(1)
        pos = torch.arange(ids.shape[1], device=mask.device)[None, :]
        lo = torch.full_like(n_real, self.start)
        hi = n_real + (self.end or 0)
        keep = ((pos >= lo[:, None]) & (pos < hi[:, None]) & mask.bool()).double()
        with torch.inference_mode(), LayerStates(self.layer_list) as cap:
            out = self.model(input_ids=ids, attention_mask=mask)
            every = cap.states(out.last_hidden_state, post_norm=True)
            states = torch.stack([every[i].float() for i in self.taken])
            states = states if self.all_layers else states.sum(0, keepdim=True)
            keep = keep.to(states.device)
            n = keep.sum(1)
            vecs = (states.double() * keep[..., None]).sum(2) / n.clamp(min=1)[:, None]
        return vecs.transpose(0, 1).cpu().numpy().astype(np.float32), n.long().cpu().numpy()


def decoder_layers(model, n_layers: int):
    """The model's stack of layers (decoder or encoder): the outermost ModuleList of
    `n_layers` modules."""
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


def read_transcripts(
    path, names: Sequence[str], text_col: str, verbatim: bool = False
) -> list[str]:
    """The transcript of every clip of the shard, in shard order ('' when empty).

    `verbatim` (recipe mertools): as written; else whitespace runs collapsed and stripped."""
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
    k = embedder.n_stored  # `layers: all`: every state's vector too
    stack = np.zeros((len(names), k, embedder.dim), np.float32) if k else None
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
        vecs, counts, pooled = embedder.embed_layers([texts[i] for i in idx])
        for i, v, n, each in zip(idx, vecs, counts, pooled, strict=True):
            if n == 0:
                outcome.fail(i, "empty_transcript", "no content token after tokenization")
            else:
                features[i] = v
                if stack is not None:
                    stack[i] = each
        bar.update(len(idx))
    bar.close()
    named = describe_layers(params.layers, embedder.indices, embedder.n_layers)
    if params.recipe == "mertools":
        layers = f"sum of {named} (post final norm)"
        pooling = f"mean over tokens [{embedder.start}:{embedder.end}] (MERTools), verbatim text"
    else:
        layers = f"mean of {named}"
        pooling = "mean over tokens without special tokens, whitespace collapsed"
    if stack is not None:
        layers += f"; {stored_layers_note(k)}"
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
            "family": embedder.family,
            "tokenizer": embedder.tokenizer_kind,
            "hidden_states": embedder.indices,
            **({"stored_layers": embedder.taken} if stack is not None else {}),
            "departures": embedder.departures,
        },
    )
    write_feature_shard(args.out, meta, outcome, features, STAGE, stack)
