"""Stage 1, images: list and inspect raw files, decode safely, preprocess, thumbnails."""
