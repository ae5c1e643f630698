"""Feature extraction: `mersemi extract <stage> --shard SHARD_CSV --out OUT [--params JSON]`.

Stages (one package each, registered in `mersemi.extract.cli.STAGES`):
  faces     video -> aligned face crops (HDF5 per shard)           [faces/]
  visual    face crops -> CLIP ViT-L/14 image features, mean (768)  [visual/]
  audio     video -> 16 kHz mono wav per clip + index CSV           [audio/]
  acoustic  wavs -> speech-encoder features (HuBERT-Large: 1024)     [acoustic/]
  asr       wavs -> WeNet ASR text (every decoding mode)            [asr/]
            + `transcripts`: merged with the provided ones, CER     [asr/merge.py]
  text      transcripts -> LLM features (Baichuan2-13B: 5120)       [text/]

A stage package's `__init__` is its light spec (`STAGE`, `HELP`, `Params`, `add_arguments`,
`run`, `check_model`): the CLI imports every spec to build its parser, so a spec imports no
torch, open_clip, cv2 or transformers; `run` and `check_model` import the implementation
modules, which import their libraries at the top. No stage imports another: what two stages
share is a module here: `common` (params, failure isolation, prefetching, batching), `wav`
(the audio stage's index and wavs), `crops` (the crops file), `ffmpeg` (ffmpeg's error line),
`hidden` (hidden states of a layer stack), `models` and `modelcheck`; device and precision
are `mersemi.device` (shared with training).
"""
