"""Reading and checking Vietnamese chip ID cards (CCCD 2021, căn cước 2024).

Pure functions, no Flask and no database; facts about the formats are in ../shared/DOMAIN.md.

- `idnumber`   : the 12-digit personal identification number (province, century/sex, year).
- `mrz`        : ICAO 9303 machine readable zones (TD1, TD2, TD3, MRV-A, MRV-B) with the
                 Vietnamese TD1 layout and its cross-checks; `compose_vn_td1` builds one.
- `qr_payload` : the `|`-separated QR payload of the 2021 and 2024 cards.
- `checks`     : cross-checks between QR, MRZ and printed (OCR) fields, as findings with a
                 stable code and a severity (reject / review / warn).
- `reader`, `synth`, `imaging`, `ocr`, `evaluate`: image side (another module owner).
"""
