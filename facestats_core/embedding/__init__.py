"""Stage 3, embedding: load CLIP and turn images into L2-normalised embeddings."""
