"""Contrast-agnostic spinal-cord segmentation (soft masks) and cross-sectional-area morphometry.

Modules: ``morphometry`` (per-slice CSA, diameters), ``centerline`` (smoothed cord axis),
``levels`` (vertebral level per slice), ``autolevels`` (cord levels projected from vertebral bodies
along the cord), ``spinelevels`` (levels estimated with the whole-spine model),
``crop``/``segment`` (ONNX inference), ``qc`` (PNG), ``api`` (``run_file``),
``data``/``training`` (torch, training only).
"""
