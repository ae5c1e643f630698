"""Every CUDA path of mersemi and its figures, in one run sized for a short GPU loan.

    bash benchmarks/gpu_check.sh                      # on the GPU machine, from the repo root
    PYTHONPATH=src python -m benchmarks.gpu_check --device cpu --smoke   # CPU, tiny (tests)

Writes benchmarks/results/gpu_check.json (--out) after every part, so a run killed at its
time limit keeps what it measured, and prints one table at the end. Parts (--parts):

- peak        bf16 / fp16 / fp32 matrix products: the GPU's peak in this run, the yardstick of
              every "% peak" (FLOPs of the models counted from their shapes by torch's
              FlopCounterMode on the one-at-a-time pass, i.e. without padding, over the time
              of the batched pass: a ratio, not an absolute time).
- visual      open_clip ViT-L-14, random weights saved as an open_clip checkpoint and loaded
              by the stage's ClipEncoder: frames/s, batches of 64 frames spanning clips vs one
              clip per call, fp32 / bf16 / fp16 autocast.
- acoustic    HuBERT-Large from its config (24 x 1024, random weights, save_pretrained) through
              SpeechEmbedder: audio-seconds/s, 16 chunks per batch vs one, loaded in each dtype.
- asr         the WeNet export fixture (shared/fixtures/wenet-u2pp-small, U2++ conformer,
              TorchScript, fp32 only) through WenetRecognizer: encoder + CTC audio-seconds/s on
              the device, one utterance per call (the runtime's design), CTC log-probs
              against the CPU's.
- text        Baichuan2-13B's layer shapes (hidden 5120, intermediate 13696, 40 heads) built
              from the fixture's remote code (mersemi.fixtures.baichuan) with 3 layers instead of
              40, through TextEmbedder: tokens/s, 32 sentences per batch vs one, bf16 / fp16 /
              fp32; figures scaled to 40 layers (see `scale_to_40`).
- text_plans  each memory plan one GPU can run (single, cpu_offload with part of the layers
              really offloaded, int8 / int4 with bitsandbytes; multi_gpu needs two GPUs): peak
              GPU memory, scaled to 40 layers, against docs/extraction_models.md; and the OOM
              back-off triggered for real (torch.cuda.set_per_process_memory_fraction caps the
              process below what a batch of 64 long sentences needs): halved, retried, logged,
              the same features as without the cap.
- training    `mersemi synth` at MER2024 size (5,030 labeled, 115,595 unlabeled, 1,169 test
              clips): pretraining and one fine-tuning fold with CUDA amp (bf16), s/epoch; and a
              small case (1,200 clips, no NEE, no dropout, fp32) trained on the CPU and on the
              GPU, whose losses and probabilities must agree within TOLERANCE.
- slots       two concurrent GPU jobs through mersemi.gpu: as the machine is (one GPU: no slot
              is taken, so both run at once) and with MERSEMI_GPUS=0,0 (two slots naming the
              same GPU: the second waits for the first to exit, then runs).
- families    one extra encoder family per modality on the mertools-zoo fixture through the
              stages' run path: DINOv2, a BERT encoder, WavLM (skipped, saying why, while the
              acoustic stage has no `family`): s/clip batched vs one clip per call, and the
              max relative difference to MERTools' files under a tolerance per precision.

Each part runs in its own process with a time budget (a hang or a CUDA error ends that part
only) and is skipped, with a line saying why, when a package it needs is missing or the total
budget (--budget, default 450 s) cannot hold it. --smoke runs the same code on tiny models and
data (the CPU test in tests/test_gpu_check.py), so the script cannot rot between GPU loans.

Layout: `harness` is the generic part (the parent process: budgets, one child process per
part, the JSON and the table; the child's dispatch), `part` what every part uses (`Part`, the
timing, memory and FLOP helpers, the fixture lookup, the tolerances the report quotes), and
one module per part, each with `run(P, dev)`, imported only in that part's child process.
"""
