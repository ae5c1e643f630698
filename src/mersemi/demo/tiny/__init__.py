"""Tiny randomly-initialised models in the real on-disk formats (`mersemi models tiny`).

Each module writes one model into a directory that the real loader reads unchanged:
  hubert  transformers HuBERT directory (config, weights, preprocessor config)
  wenet   WeNet runtime directory (final.zip TorchScript + units.txt)
  llm     transformers causal-LM directory with a character-level Chinese tokenizer
  clip    open_clip checkpoint with its model config
  zoo     one more family per modality (WavLM, DINOv2, BERT directories) for config.zoo.yaml
They are deterministic (seeded) so the demo and the tests give the same numbers every run.
"""
