"""Reports from simulation run directories: ``summary.md``, ``index.html`` and PNG figures.

Reads only the files described in docs/results.md (``summary.json`` and the
CSV tables), so a report can be rebuilt from a run directory alone.
"""

from atsnn.report.build import build_report

__all__ = ["build_report"]
