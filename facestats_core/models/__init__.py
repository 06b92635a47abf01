"""Stage 5, models: attribute probes and the attractiveness regressor (train, evaluate, store)."""
