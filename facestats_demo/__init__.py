"""The demo data generator: deterministic synthetic faces with FairFace-format labels, SCUT-format
ratings and landmark truth, hostile edge-case files, and seeded random CLIPs for offline runs and tests.

Not part of the production core: nothing in ``facestats_core`` imports it.
"""
