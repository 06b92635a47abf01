"""FaceStats orchestration: Dagster assets, resources and IO manager over `facestats_core`."""
