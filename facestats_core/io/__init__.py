"""Storage shared by every stage: artifact layout under the data/model roots, atomic writes, hashing."""
