"""scikit-learn's digits data (ships inside the package: nothing is downloaded)."""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.3


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): images (n, 1, 8, 8) normalised to [0, 1] (pixel / 16).

    Stratified 70/30 split with ``random_state = 0``; deterministic.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data / 16.0, d.target, test_size=TEST_FRACTION, stratify=d.target,
                                          random_state=SPLIT_SEED)
    return xtr.reshape(-1, 1, 8, 8), ytr, xte.reshape(-1, 1, 8, 8), yte
