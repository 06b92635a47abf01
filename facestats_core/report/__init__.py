"""Stage 8, report: charts and the self-contained HTML report."""
