"""Stage 7, composites: filter specs, face selection, averaging, contact sheet."""
