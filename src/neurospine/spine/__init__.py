"""Whole-spine two-phase pipeline: semantic model (phase 1), vertebra instances (phase 2), level naming.

Public entry point: :func:`neurospine.spine.api.run_file`.
"""
