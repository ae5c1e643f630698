"""A tiny WeNet runtime model directory: `final.zip` (TorchScript) + `units.txt`.

WeNet's released runtime models (e.g. the WenetSpeech U2++ conformer) are `torch.jit.script`
exports of its ASR model, whose exported methods the C++ runtime calls. This module scripts a
small module with the same interface (the methods `mersemi.extract.asr` calls):

  subsampling_rate() -> int, right_context() -> int, sos_symbol() -> int, eos_symbol() -> int,
  is_bidirectional_decoder() -> bool,
  forward_encoder_chunk(xs, offset, required_cache_size, att_cache, cnn_cache)
      -> (encoder_out, att_cache, cnn_cache)   xs: (1, frames, 80) fbank
  ctc_activation(encoder_out) -> CTC log-probabilities (1, T, vocab)

Inside: global CMVN, a 4x conv2d subsampling (as WeNet's Conv2dSubsampling4: right context 6),
two feed-forward blocks and a CTC projection, randomly initialised with a fixed seed. It has no
attention, so it keeps no cache and returns empty cache tensors, which the streaming loop
passes back unchanged as it would real ones. It exports no `forward_attention_decoder`, so the
asr stage's `decoding: auto` falls back to the CTC prefix beam on it; rescoring is tested on a
real WeNet export (tests/test_extract_asr_wenet.py).
"""

import os
import warnings
from pathlib import Path

# Units of the tiny model: blank, unk, some frequent Chinese characters, sos/eos last (as
# WeNet's units.txt: "<blank> 0", "<unk> 1", ..., "<sos/eos> N-1").
TINY_CHARS = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过"
    "家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本"
    "见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己"
    "话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平"
    "真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报"
    "哭怒喜悲忧惊讶吗呢吧啊哦嗯哈"
)


def _module_source():
    import torch
    from torch import nn

    class TinyWenetRuntime(nn.Module):
        def __init__(self, vocab_size: int, n_mels: int = 80, d_model: int = 32, ch: int = 8):
            super().__init__()
            self.register_buffer("cmvn_mean", torch.zeros(n_mels))
            self.register_buffer("cmvn_istd", torch.ones(n_mels))
            self.conv1 = nn.Conv2d(1, ch, 3, 2)
            self.conv2 = nn.Conv2d(ch, ch, 3, 2)
            freq = ((n_mels - 1) // 2 - 1) // 2
            self.proj = nn.Linear(ch * freq, d_model)
            self.ff1 = nn.Linear(d_model, d_model)
            self.ff2 = nn.Linear(d_model, d_model)
            self.norm = nn.LayerNorm(d_model)
            self.ctc = nn.Linear(d_model, vocab_size)
            self.vocab_size = vocab_size
            self.subsampling = 4
            self.context = 6

        @torch.jit.export
        def subsampling_rate(self) -> int:
            return self.subsampling

        @torch.jit.export
        def right_context(self) -> int:
            return self.context

        @torch.jit.export
        def sos_symbol(self) -> int:
            return self.vocab_size - 1

        @torch.jit.export
        def eos_symbol(self) -> int:
            return self.vocab_size - 1

        @torch.jit.export
        def is_bidirectional_decoder(self) -> bool:
            return False

        @torch.jit.export
        def forward_encoder_chunk(
            self,
            xs: torch.Tensor,
            offset: int,
            required_cache_size: int,
            att_cache: torch.Tensor,
            cnn_cache: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = (xs - self.cmvn_mean) * self.cmvn_istd
            x = torch.relu(self.conv1(x.unsqueeze(1)))
            x = torch.relu(self.conv2(x))
            b, c, t, f = x.size()
            x = self.proj(x.transpose(1, 2).contiguous().view(b, t, c * f))
            x = x + self.ff2(torch.relu(self.ff1(x)))
            return self.norm(x), att_cache, cnn_cache

        @torch.jit.export
        def ctc_activation(self, xs: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(self.ctc(xs), dim=2)

        def forward(self, xs: torch.Tensor) -> torch.Tensor:
            empty = torch.zeros(0, 0, 0, 0)
            out, _, _ = self.forward_encoder_chunk(xs, 0, -1, empty, empty)
            return self.ctc_activation(out)

    return TinyWenetRuntime


def tiny_units() -> list[str]:
    return ["<blank>", "<unk>", *dict.fromkeys(TINY_CHARS), "<sos/eos>"]


def write_tiny_wenet(out: str | os.PathLike, seed: int = 0) -> Path:
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    units = tiny_units()
    torch.manual_seed(seed)
    model = _module_source()(len(units)).eval()
    with torch.no_grad():
        # Spread the CTC outputs so random weights emit characters, not only blanks.
        model.ctc.weight.mul_(8.0)
        model.ctc.bias.zero_()
        # Typical log-mel statistics (speech fbank at int16 scale), so CMVN has real work to do.
        model.cmvn_mean.fill_(10.0)
        model.cmvn_istd.fill_(0.3)
    with warnings.catch_warnings():
        # torch.jit.script is deprecated upstream, but TorchScript is WeNet's runtime format.
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(model)
    scripted.save(str(out / "final.zip"))
    (out / "units.txt").write_text(
        "".join(f"{u} {i}\n" for i, u in enumerate(units)), encoding="utf-8"
    )
    return out
