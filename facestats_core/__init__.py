"""FaceStats core: pure, Dagster-free functions for face-dataset analytics.

Every module here takes data and paths and returns data. Heavy libraries
(torch, transformers) are imported inside the functions that need them so that
importing this package is cheap.
"""

__version__ = "0.1.0"
