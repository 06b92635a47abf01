"""The sections of the stats report, one module each, in page order: ``dataset``, ``attributes``,
``classifiers``, ``attractiveness``, ``clusters``, ``composites``, ``reproducibility``.

Each returns a :class:`~facestats_core.report.sections.common.Section`: its status, the numbers
its template macro renders (a frozen dataclass, no HTML) and its charts.
"""
