"""Stage 5, models: where models come from, attribute probes, zero-shot prompts and tags, bundles, the model store."""
