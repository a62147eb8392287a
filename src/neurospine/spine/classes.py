"""Network classes of the phase-1 semantic model and their SPINEPS values.

A 2D/2.5D sagittal network cannot tell left from right inside one slice, so left/right structures are
predicted as one class and split afterwards by side of the midline (``semantic.split_left_right``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: class index -> (name, SPINEPS value written for that class; L/R classes carry the *left* value)
NET_CLASSES: tuple[tuple[str, int], ...] = (
    ("background", 0),
    ("arcus", 41),
    ("spinous", 42),
    ("costal", 43),
    ("sup_articular", 45),
    ("inf_articular", 47),
    ("corpus", 49),
    ("cord", 60),
    ("canal", 61),
    ("endplate", 62),
    ("disc", 100),
    ("sacrum", 26),
)
N_CLASSES = len(NET_CLASSES)

BG, ARCUS, SPINOUS, COSTAL, SUP_ART, INF_ART, CORPUS, CORD, CANAL, ENDPLATE, DISC, SACRUM = range(N_CLASSES)

#: classes whose value gets +1 on the patient's right side (43->44, 45->46, 47->48)
LR_CLASSES: tuple[int, ...] = (COSTAL, SUP_ART, INF_ART)
#: classes that belong to a vertebra's posterior elements
POSTERIOR_CLASSES: tuple[int, ...] = (ARCUS, SPINOUS, COSTAL, SUP_ART, INF_ART)
#: SPINEPS values of the posterior elements, both sides
POSTERIOR_VALUES: tuple[int, ...] = (41, 42, 43, 44, 45, 46, 47, 48)


def spineps_to_net(semantic: npt.NDArray[np.integer]) -> npt.NDArray[np.uint8]:
    """Map a SPINEPS semantic map (26, 41-50, 52/53, 60-62, 100) to network class indices."""
    lut = np.zeros(256, dtype=np.uint8)
    for idx, (_, value) in enumerate(NET_CLASSES):
        if value:
            lut[value] = idx
    lut[44], lut[46], lut[48] = COSTAL, SUP_ART, INF_ART
    lut[50] = CORPUS
    lut[52] = ENDPLATE
    lut[53] = ENDPLATE
    arr = np.asarray(semantic)
    clipped = np.where((arr >= 0) & (arr < 256), arr, 0).astype(np.int64)
    return lut[clipped]


def net_to_spineps(classes: npt.NDArray[np.integer]) -> npt.NDArray[np.uint8]:
    """Class indices -> SPINEPS values (L/R classes as the left value; split them afterwards)."""
    lut = np.array([v for _, v in NET_CLASSES], dtype=np.uint8)
    return lut[np.asarray(classes, dtype=np.int64)]
