"""Spacing-aware segmentation metrics: overlap, surface distances, instance matching and PQ.

The empty-mask policy (what each metric returns for empty masks) is documented in
:mod:`neurospine.metrics.policy`.
"""

from neurospine.metrics.evaluate import (
    COLUMNS,
    detect_mode,
    evaluate_arrays,
    evaluate_files,
    evaluate_volumes,
    rows_to_csv,
    write_csv,
)
from neurospine.metrics.instances import (
    InstanceEvaluation,
    InstancePair,
    InstanceScore,
    Matching,
    MatchMethod,
    PanopticQuality,
    evaluate_instances,
    match_instances,
    panoptic_quality,
)
from neurospine.metrics.overlap import Confusion, confusion, dice, jaccard, precision, recall, soft_dice, volume_mm3
from neurospine.metrics.policy import ONE_EMPTY_DISTANCE_MM, EmptyPolicy
from neurospine.metrics.surface import (
    SurfaceDistances,
    SurfaceMetrics,
    assd_mm,
    hd95_mm,
    hd_mm,
    surface,
    surface_distances,
    surface_metrics,
)

__all__ = [
    "COLUMNS",
    "ONE_EMPTY_DISTANCE_MM",
    "Confusion",
    "EmptyPolicy",
    "InstanceEvaluation",
    "InstancePair",
    "InstanceScore",
    "MatchMethod",
    "Matching",
    "PanopticQuality",
    "SurfaceDistances",
    "SurfaceMetrics",
    "assd_mm",
    "confusion",
    "detect_mode",
    "dice",
    "evaluate_arrays",
    "evaluate_files",
    "evaluate_instances",
    "evaluate_volumes",
    "hd95_mm",
    "hd_mm",
    "jaccard",
    "match_instances",
    "panoptic_quality",
    "precision",
    "recall",
    "rows_to_csv",
    "soft_dice",
    "surface",
    "surface_distances",
    "surface_metrics",
    "volume_mm3",
    "write_csv",
]
