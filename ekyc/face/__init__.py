"""Face matching (first piece of issue 4): a `Matcher` interface, its dlib implementation
(`face_recognition`) and provisional thresholds calibrated on faces-dev.

    from ekyc.face import default_matcher, load_thresholds
    m = default_matcher()
    a, b = m.encode(jpeg_a), m.encode(jpeg_b)      # None when no face
    same = m.distance(a, b) < load_thresholds(m.model).strict

Importing this package is cheap; the models load on first use (`default_matcher()`).
"""

from ekyc.face.matcher import (
    DlibMatcher,
    Encoding,
    FaceImageError,
    Matcher,
    ModelInfo,
    default_matcher,
    load_rgb,
)
from ekyc.face.thresholds import Thresholds, ThresholdsError
from ekyc.face.thresholds import load as load_thresholds

__all__ = ["DlibMatcher", "Encoding", "FaceImageError", "Matcher", "ModelInfo", "Thresholds",
           "ThresholdsError", "default_matcher", "load_rgb", "load_thresholds"]
