"""The sections of the stats report, one module each.

Each returns a :class:`~facestats_core.report.sections.common.Section` (HTML, status, charts).
"""
