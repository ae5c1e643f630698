"""Feature extraction: `mersemi extract <stage> --shard SHARD_CSV --out OUT [--params JSON]`.

Stages (one module each, registered in `mersemi.extract.cli.STAGES`):
  faces     video -> aligned face crops (HDF5 per shard)           [frames.py, faces.py]
  visual    face crops -> CLIP ViT-L/14 image features, mean (768)  [visual.py]
  audio     video -> 16 kHz mono wav per clip + index CSV           [audio.py]
  acoustic, asr, text                                                [added by their modules]

Shared machinery (params, failure isolation, prefetching, device selection) is in `common`.
Stage modules keep their module-level imports light (no torch/open_clip/cv2 at import time):
the CLI imports every stage module to build its parser.
"""
