import numpy as np
import pytest
from scipy import ndimage

from neurospine.spine.centres import label_centres, label_counts


def test_centres_and_counts_match_scipy_inside_a_big_empty_map():
    rng = np.random.default_rng(1)
    labels = np.zeros((60, 50, 40), dtype=np.int16)
    labels[20:30, 10:25, 5:9] = 3
    labels[40:44, 30:33, 30:38] = 120
    labels[rng.random(labels.shape) < 0.001] = 7
    ids = [3, 7, 120]
    ones = np.ones(labels.shape, np.uint8)
    np.testing.assert_array_equal(label_centres(labels, ids), np.array(ndimage.center_of_mass(ones, labels, ids)))
    np.testing.assert_array_equal(label_counts(labels, ids), ndimage.sum_labels(ones, labels, ids).astype(int))


def test_absent_ids_and_empty_maps():
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    assert np.isnan(label_centres(labels, [1, 2])).all() and label_counts(labels, [1]).tolist() == [0]
    labels[2, 3, 4] = 1
    out = label_centres(labels, [1, 5])
    assert out[0].tolist() == [2.0, 3.0, 4.0] and np.isnan(out[1]).all()
    assert label_centres(labels, []).shape == (0, 3)
    with pytest.raises(ValueError, match="background"):
        label_centres(labels, [0, 1])
