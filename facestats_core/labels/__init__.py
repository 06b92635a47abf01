"""Stage 4, labels: canonical vocabularies, label and rating files matched to images."""
