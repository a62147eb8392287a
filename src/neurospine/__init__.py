"""neurospine: spine and brain MRI masks and biomarkers, on the CPU, with models trained here."""

from neurospine.errors import InputError, NeuroSpineError
from neurospine.io import Volume, load_volume
from neurospine.results import TaskResult

__version__ = "0.1.0"

__all__ = ["InputError", "NeuroSpineError", "TaskResult", "Volume", "__version__", "load_volume"]
