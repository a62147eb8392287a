"""One-off analyses behind a decision or a documented conclusion, kept runnable but not part of the benchmark set.

Each writes its record to ``benchmarks/results/`` like a benchmark (``benchmarks.common.write_results``) and
runs as ``python -m benchmarks.analyses.<name>``:

- ``spine_reference_check``: are the VB1 vertebral-body references laterally incomplete? (the spine page's
  known limits and ``benchmarks/results/spine_reference_check.md``).
"""
