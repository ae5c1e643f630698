"""Fixtures that stand in for data and models the user may not have.

  videos          `mersemi demo`: the MER2024-layout demo dataset (decodable clips)
  media           pixels and samples of the demo clips (per-class cues)
  synth           synthetic MER2024-shaped features with a known structure (no videos)
  synth_speakers  the same with speakers, unseen test speakers and ambiguous pool clips
  tiny/           tiny random models in the real on-disk formats (`mersemi models tiny`)

Nothing in the pipeline's core imports this package; the workflow uses it for the offline
default config only (`data.demo`, `models.tiny`).
"""
