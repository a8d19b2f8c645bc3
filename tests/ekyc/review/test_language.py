"""The console speaks Vietnamese unless the user switches to English."""

from __future__ import annotations

import pytest

from tests.ekyc.review.conftest import sign_in

PAGES = {"/ops/queue": ("Hàng đợi xem xét", "Review queue"),
         "/ops/dashboard": ("Bảng thống kê", "Dashboard"),
         "/ops/counter": ("Đăng ký tại quầy", "Counter onboarding"),
         "/ops/audit": ("Nhật ký kiểm toán", "Audit log")}


@pytest.mark.parametrize("path", sorted(PAGES))
def test_console_pages_are_in_vietnamese_by_default_and_english_on_request(app, client,
                                                                            staff, path):
    staff(app)
    sign_in(client, app, "sup1")
    vi, en = PAGES[path]
    page = client.get(path)
    assert page.status_code == 200
    assert f"<h1>{vi}</h1>" in page.get_data(as_text=True)
    assert '<html lang="vi"' in page.get_data(as_text=True)
    client.get("/lang/en")
    page = client.get(path)
    assert f"<h1>{en}</h1>" in page.get_data(as_text=True)
