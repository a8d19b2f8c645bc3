"""Relying-party portals that sign citizens in through the DinhDanh OpenID Provider.

`clients.portal` is one small Flask app used by both Python portals (public services and social
insurance); `clients/node-example/` does the same with npm openid-client; `python -m clients
setup` registers all three in the IdP's database. The table below is the single place that
fixes their names, ports, client ids, cookies and pairwise sectors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Portal:
    name: str          # profile name, also the folder under <instance>/clients/
    port: int          # default port on 127.0.0.1 (`make run`)
    client_id: str     # fixed client id in the IdP
    cookie: str        # the portal's own session cookie (browsers share cookies across ports)
    sector: str        # pairwise sector: two portals on one host still get different subs
    client_name: str   # shown to citizens on the IdP's consent page (Vietnamese)
    client_name_en: str


PORTALS: dict[str, Portal] = {p.name: p for p in (
    Portal("public_services", 8201, "portal-dichvucong", "dvc_session",
           "dichvucong.demo.gov.vn", "Cổng Dịch vụ công (demo)", "Public Services Portal (demo)"),
    Portal("social_insurance", 8202, "portal-baohiemxahoi", "bhxh_session",
           "baohiemxahoi.demo.gov.vn", "Cổng Bảo hiểm xã hội (demo)",
           "Social Insurance Portal (demo)"),
    Portal("node_example", 8203, "portal-node-example", "nodeex_session",
           "node-example.demo.gov.vn", "Ví dụ Node.js (demo)", "Node.js example (demo)"),
)}
