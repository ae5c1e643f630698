"""Test-only helpers (imported as `helpers.<module>`; pytest puts tests/ on sys.path).

  tiny_models   the demo's tiny models written once per test run, short tones, shard and
                audio-index CSVs for the audio-side stages
  manifest      `build_manifest`: the manifest straight from MER2024-style folders
  openface      `built_or_skip`: the OpenFace binary, or a skip without its fixture
  train_store   a tiny feature store (`store` fixture) and the `mersemi train` flags for it
  done_run      `mark_done`: a workflow run marked done (`--touch`), and dry runs on it

Builders that the benchmarks share (fixture media, CLIP formats, Baichuan2, OpenFace, the
fixture lookup) live in the package, `mersemi.fixtures`.
"""
