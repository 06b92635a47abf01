"""Stage 2, faces: eye landmarks, detectors and aligned face crops."""
