"""Citizen accounts: authentication (password, TOTP, passkeys), throttling, the account page."""
