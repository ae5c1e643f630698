"""Text features: a transformers language model (Baichuan2-13B-Base) on each clip's transcript.

Recipe (MER2024 baseline): tokenize the sentence, run the base model (`AutoModel`; no LM head
is evaluated) with `output_hidden_states`, average the last `layers` (4) hidden states, then
average over the sentence's tokens without special tokens (BOS/EOS/PAD; `<unk>` stays, it
stands for real text) -> hidden size (5120 for Baichuan2-13B).

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
    select_device,
    write_feature_shard,
)
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

    def check(self) -> None:
        if self.layers < 1 or self.batch_size < 1 or self.max_tokens < 1:
            raise InputError(f"{STAGE}: layers, batch_size and max_tokens must be >= 1")


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
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.device = select_device(params.device)
        self.dtype = load_dtype(self.device, params.precision)
        trust = params.trust_remote_code
        try:
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
            model = AutoModel.from_pretrained(path, trust_remote_code=trust, dtype=self.dtype)
        except (OSError, ValueError, KeyError) as e:
            hint = (
                " (models that ship their own code, like Baichuan2, need params key "
                "trust_remote_code: true)"
                if not trust
                else ""
            )
            raise InputError(f"extract {STAGE}: cannot load {path}: {e}{hint}") from None
        # Baichuan2's auto_map sends AutoModel to its *ForCausalLM class; run only the base
        # model (`base_model_prefix`), so the LM head is never evaluated.
        base = getattr(model, "base_model", model)
        self.model = base.to(self.device).eval()
        if tok.pad_token is None:
            tok.pad_token = tok.unk_token or tok.eos_token
        tok.padding_side = "right"
        self.tokenizer = tok
        # BOS/EOS/PAD/... are dropped from the token mean; <unk> stands for real content.
        self.special_ids = sorted(set(tok.all_special_ids) - {tok.unk_token_id})
        self.dim = int(model.config.hidden_size)
        self.model_dir = Path(path)
        n_states = int(model.config.num_hidden_layers) + 1
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
        bs = self.params.batch_size
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            vecs, n = self._forward([texts[k] for k in idx])
            out[idx] = vecs
            counts[idx] = n
        return out, counts

    def _forward(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.params.max_tokens,
            return_tensors="pt",
        )
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        special = torch.isin(ids, torch.tensor(self.special_ids, device=self.device))
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
    from ..manifest import read_csv_table

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


def run(args, params: Params) -> None:
    clips = read_shard(args.shard)
    names = [c.name for c in clips]
    texts = read_transcripts(args.transcripts, names, params.text_col)
    embedder = TextEmbedder(params)
    outcome = Outcome(names)
    features = np.zeros((len(names), embedder.dim), dtype=np.float32)
    todo = []
    for i, t in enumerate(texts):
        if t:
            todo.append(i)
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
