"""Training core: MR-CCL (contrastive pretraining with noise embedding enhancement, fine-tuning),
the MER2024 attention baseline, oversampling, self-training, weighted soft voting and
cross-validation.

Pure cores (arrays/tensors in, arrays/tensors out) live in `oversample`, `nee`, `losses`,
`models`, `vote`, `metrics`, `folds`, `selftrain`; `engine` trains and predicts; `io` and `cli`
are the edge (files, flags).
"""
