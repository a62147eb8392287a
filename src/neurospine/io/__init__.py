"""Geometry-safe image I/O."""

from neurospine.io.load import load_volume
from neurospine.io.orientation import Reorientation, reorient
from neurospine.io.resample import resample_like, resample_to_grid, resample_to_spacing
from neurospine.io.save import atomic_path, save_like, save_volume, write_text_atomic
from neurospine.io.volume import Volume, stem_of

__all__ = [
    "Reorientation",
    "Volume",
    "atomic_path",
    "load_volume",
    "reorient",
    "resample_like",
    "resample_to_grid",
    "resample_to_spacing",
    "save_like",
    "save_volume",
    "stem_of",
    "write_text_atomic",
]
