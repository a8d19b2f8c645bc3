"""Tests of `ekyc.document`; helpers shared by its test modules.

`EKYC_TEST_DATA` (default `../shared/data` next to the repository) holds the shared test data;
tests that need it skip with a reason when it is absent. Never copy it into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from ekyc.document.mrz import check_digit

ROOT = Path(__file__).resolve().parents[3]


def test_data_dir() -> Path:
    """The shared test data directory (it may not exist)."""
    return Path(os.environ.get("EKYC_TEST_DATA") or ROOT.parent / "shared" / "data")


test_data_dir.__test__ = False  # a helper, not a test


def recompute_td1_check_digits(line1: str, line2: str, line3: str) -> list[str]:
    """Every check digit of a (Vietnamese) TD1 recomputed, as a forger who knows ICAO 9303
    would: forgeries that only the cross-checks can catch."""
    line1 = line1[:14] + check_digit(line1[5:14]) + line1[15:29] + check_digit(line1[15:27])
    line2 = (line2[:6] + check_digit(line2[:6]) + line2[7:14] + check_digit(line2[8:14])
             + line2[15:29])
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    return [line1, line2, line3]
