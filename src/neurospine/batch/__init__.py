"""Cohort scale: BIDS batch runs, results database, tidy tables and the HTML QC report.

Public API: ``run_batch(BatchConfig(...))``, ``discover(dataset, ...)``, ``export_table(out_dir, path)``,
``write_report(out_dir)``, ``import_marks(out_dir, marks_json)``.
"""

from neurospine.batch.bids import Scan, discover
from neurospine.batch.runner import BatchConfig, BatchSummary, database_path, derivatives_root, run_batch

__all__ = ["BatchConfig", "BatchSummary", "Scan", "database_path", "derivatives_root", "discover", "run_batch"]
