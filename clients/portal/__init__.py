"""A relying-party portal on the DinhDanh OpenID Provider, one app for both Python portals.

    gunicorn 'clients.portal:create_app("public_services")'   # :8201
    gunicorn 'clients.portal:create_app("social_insurance")'  # :8202

Reads what `python -m clients setup` wrote (client.json, key.jwk) from PORTAL_INSTANCE.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask_babel import Babel

from . import config, errors, store, views, websession
from .oidc import OIDCClient, Provider
from .profiles import PROFILES
from .services import make_services


def create_app(profile: str, overrides: dict | None = None) -> Flask:
    if profile not in PROFILES:
        raise config.ConfigError(f"unknown portal {profile!r}; one of {', '.join(PROFILES)}")
    chosen = PROFILES[profile]
    conf = config.load(chosen.portal, overrides)
    app = Flask(__name__)
    app.config.update(conf)
    app.config["PROFILE"] = chosen
    # Flask's own signed-cookie session is never used; a unique name keeps it off other apps'.
    app.config["SESSION_COOKIE_NAME"] = f"{chosen.portal.cookie}_unused"
    app.config["COOKIE_SECURE"] = conf["PORTAL_ENV"] != "development"
    app.config["IDP_ORIGIN"] = "{0.scheme}://{0.netloc}".format(urlsplit(conf["ISSUER"]))
    app.extensions["portal_store"] = store.connect(conf, chosen.portal.name)
    provider = Provider(conf)
    app.extensions["oidc"] = OIDCClient(conf, provider)

    Babel(app, locale_selector=websession.current_lang, default_locale="vi",
          default_translation_directories=str(Path(__file__).parent / "translations"))
    websession.init_app(app)
    errors.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(make_services(chosen))
    return app
