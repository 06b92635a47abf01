"""Stage 8, report: matplotlib charts and the self-contained HTML report (a Jinja2 template)."""
