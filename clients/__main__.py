"""`python -m clients setup [--issuer URL] [--instance DIR] [--host HOST] [--base-url NAME=URL]`"""

from __future__ import annotations

import argparse
import sys

from . import PORTALS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser(
        "setup", help="register the demo portals in the IdP database and write their keys")
    setup.add_argument("--issuer", help="the IdP's issuer (default: its ISSUER setting)")
    setup.add_argument("--instance", help="where clients/<name>/ go (default: the IdP's "
                                          "instance path)")
    setup.add_argument("--host", default="127.0.0.1", help="host of the portals' base URLs")
    setup.add_argument("--base-url", action="append", default=[], metavar="NAME=URL",
                       help="a portal's base URL instead of http://HOST:PORT (repeatable)")
    args = parser.parse_args(argv)

    base_urls = {}
    for item in args.base_url:
        name, _, url = item.partition("=")
        if name not in PORTALS or not url.startswith(("http://", "https://")):
            parser.error(f"--base-url wants NAME=URL with NAME among {', '.join(PORTALS)}")
        base_urls[name] = url.rstrip("/")

    from .setup import SetupError, setup_portals

    try:
        for line in setup_portals(issuer=args.issuer, instance=args.instance, host=args.host,
                                  base_urls=base_urls):
            print(line)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
