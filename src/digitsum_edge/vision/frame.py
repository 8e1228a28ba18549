"""A frame or picture -> the model's 28x28 input: the one entry of the vision layer.

A camera frame (roi < 1) is read in its central square (vision/preprocess.py, the region path); a still read
whole (roi 1) is searched for the digit anywhere in it, each candidate read through the same region path
(vision/stills.py); with `search` off a whole picture is read as one region framed on its digit (a crop).
"""

from __future__ import annotations

import numpy as np

from digitsum_edge.vision.preprocess import DEFAULT, Prepared, PreprocessConfig, read_region
from digitsum_edge.vision.stills import prepare_still


def prepare(frame: np.ndarray, cfg: PreprocessConfig = DEFAULT) -> Prepared:
    """Find the digit in the frame's region of interest (roi < 1) or anywhere in the whole picture (roi 1) and
    make it look like an MNIST image."""
    if cfg.reading.fraction >= 1.0 and cfg.reading.search:
        return prepare_still(frame, cfg)
    return read_region(frame, cfg)
