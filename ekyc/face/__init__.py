"""Face matching (issue 4): a `Matcher` interface and its dlib implementation
(`face_recognition`), calibrated three-outcome thresholds, quality gates and the selfie-vs-card
comparison.

    from ekyc.face import default_matcher, load_thresholds
    m = default_matcher()
    a, b = m.encode(jpeg_a), m.encode(jpeg_b)      # None when no face
    load_thresholds(m.model).outcome(m.distance(a, b))   # "accept" | "review" | "reject"

    from ekyc.face.frames import analyse_burst     # one detection per selfie frame
    from ekyc.face.quality import assess           # quality gates, QUALITY_MESSAGES
    from ekyc.face.compare import compare_selfie   # fusion + card/register comparison

`python -m ekyc.face.calibrate` recalibrates `thresholds.json`; `ekyc evaluate-faces DIR` and
`ekyc compare IMG_A IMG_B` measure. Importing this package is cheap; the models load on first
use (`default_matcher()`).
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
from ekyc.face.thresholds import ACCEPT, REJECT, REVIEW, Thresholds, ThresholdsError
from ekyc.face.thresholds import load as load_thresholds

__all__ = ["ACCEPT", "REJECT", "REVIEW", "DlibMatcher", "Encoding", "FaceImageError", "Matcher",
           "ModelInfo", "Thresholds", "ThresholdsError", "default_matcher", "load_rgb",
           "load_thresholds"]
