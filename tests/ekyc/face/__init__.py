"""Tests of `ekyc.face` (the face matcher, its thresholds and their calibration)."""
