"""The demo data generator: deterministic synthetic faces with FairFace-format labels, SCUT-format
ratings and landmark truth, hostile edge-case files, seeded random CLIPs for tests and benchmarks, and
the demo CLIP trained on demo faces (``train_clip``; shipped in ``demo_clip/``) that the offline demo uses.

Not part of the production core: nothing in ``facestats_core`` imports it.
"""
