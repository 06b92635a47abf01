"""Stage 6, analysis: flags, clusters, scores, the master table and its integrity checks."""
