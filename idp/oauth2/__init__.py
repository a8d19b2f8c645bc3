"""OAuth 2.0 and OpenID Connect endpoints: one module per specification."""
