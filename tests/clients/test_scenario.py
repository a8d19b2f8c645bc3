"""Acceptance criterion 4: the Python portals and the Node example pass the same sign-in/out
scenario against the real IdP (PAR, PKCE, nonce, private_key_jwt, RP-initiated logout)."""

from __future__ import annotations

import pytest

from .conftest import (
    DEMO_PASSWORD,
    DEMO_PID,
    LEVEL2_CITIZEN,
    NODE_CITIZEN,
    PASSWORD,
    SOCIAL_CITIZEN,
)
from .scenario import Citizen, sign_in, sign_in_and_out

pytestmark = pytest.mark.e2e


def test_public_services_sign_in_and_out(stack, public_services):
    seen = sign_in_and_out(public_services, stack.issuer, national_id=DEMO_PID,
                           password=DEMO_PASSWORD)
    claims = seen["claims"]
    assert seen["idp_pages"] == ["/login", "/consent"]
    assert claims["acr"] == "urn:dinhdanh:loa:1" and claims["amr"] == ["pwd"]
    assert claims["sid"] and claims["name"] == "Nguyễn Thị Minh Anh"
    assert claims["email"] == "minhanh.demo@example.vn" and claims["email_verified"] is True
    assert claims["sub"] in seen["landed"].text  # the home page shows the pairwise subject
    assert "Nguyễn Thị Minh Anh" in seen["landed"].text
    assert seen["me_after_logout"] == 401
    assert "Bạn đã đăng xuất" in seen["home_after_logout"].text  # back home, signed out


def test_social_insurance_asks_for_a_second_factor(stack, social_insurance):
    seen = sign_in_and_out(social_insurance, stack.issuer, national_id=SOCIAL_CITIZEN,
                           password=PASSWORD)
    # No authenticator yet: set up inside the sign-in, and it counts as the second factor.
    assert seen["idp_pages"][:2] == ["/login", "/login/step-up"]
    assert seen["totp_secret"]
    assert seen["claims"]["acr"] == "urn:dinhdanh:loa:1:mfa"
    assert {"pwd", "otp", "mfa"} <= set(seen["claims"]["amr"])
    assert seen["me_after_logout"] == 401

    again = sign_in_and_out(social_insurance, stack.issuer, national_id=SOCIAL_CITIZEN,
                            password=PASSWORD, totp_secret=seen["totp_secret"])
    assert again["idp_pages"] == ["/login", "/login/otp"]  # consent remembered
    assert again["claims"]["sub"] == seen["claims"]["sub"]
    assert again["claims"]["acr"] == "urn:dinhdanh:loa:1:mfa"


def test_node_example_sign_in_and_out(stack, node_example):
    seen = sign_in_and_out(node_example, stack.issuer, national_id=NODE_CITIZEN,
                           password=PASSWORD)
    assert seen["idp_pages"] == ["/login", "/consent"]
    assert seen["claims"]["sub"] and seen["claims"]["sid"]
    assert seen["me_after_logout"] == 401


def test_level_2_service_steps_up_within_the_sso_session(stack, public_services):
    citizen = Citizen(stack.issuer, LEVEL2_CITIZEN, PASSWORD)
    try:
        sign_in(citizen, public_services)
        assert citizen.get(public_services + "/me").json()["acr"] == "urn:dinhdanh:loa:2"
        citizen.seen.clear()
        land = citizen.follow(citizen.get(public_services + "/land"))
        assert land.status_code == 200 and land.url == public_services + "/land"
        assert "/login" not in citizen.seen  # the SSO session already satisfies level 2
    finally:
        citizen.close()


def test_level_1_citizen_is_told_how_to_reach_level_2(stack, public_services):
    citizen = Citizen(stack.issuer, DEMO_PID, DEMO_PASSWORD)
    try:
        page = sign_in(citizen, public_services, "/login?acr=urn:dinhdanh:loa:2&next=/land")
        assert "/login/step-up/level" in citizen.seen
        assert page.status_code == 403 and "công an cấp xã" in page.text
        assert citizen.get(public_services + "/me").status_code == 401
    finally:
        citizen.close()


def test_pairwise_subjects_differ_between_portals(stack, public_services, social_insurance):
    citizen = Citizen(stack.issuer, LEVEL2_CITIZEN, PASSWORD)
    try:
        sign_in(citizen, public_services)
        sign_in(citizen, social_insurance)
        first = citizen.get(public_services + "/me").json()
        second = citizen.get(social_insurance + "/me").json()
    finally:
        citizen.close()
    assert first["sub"] != second["sub"]
    assert first["sid"] == second["sid"]  # one IdP session behind both
