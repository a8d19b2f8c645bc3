"""The `ekyc` command (console script `ekyc = "ekyc.cli:main"`, run as `uv run ekyc ...`).

Subcommands:
- `parse-mrz`: MRZ lines on stdin -> one JSON object on stdout with a top-level boolean
  `valid` (every check digit and, for Vietnamese cards, every cross-check of DOMAIN.md
  holds), `format`, `fields`, `checks`, `errors`, `warnings`, `lines`. Exit 0 when valid,
  1 when not (garbage included), 2 on a usage error.
- `read-document FRONT [BACK] --json` and `evaluate-documents DIR --json`: implemented in
  `ekyc.document.reader` / `ekyc.document.evaluate` (`add_arguments(parser)` and
  `cli_read_document(args)` / `cli_evaluate_documents(args)`). They are imported only when
  the subcommand runs, so `parse-mrz` never loads OpenCV or Tesseract.
- `compare IMG_A IMG_B --json` and `evaluate-faces DIR --json [--plot FILE]`: the face
  matcher at its calibrated thresholds (`ekyc.face.compare`, `ekyc.face.evaluate`); they load
  dlib only when they run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from datetime import date

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
MAX_STDIN = 64 * 1024  # an MRZ is 90 characters; anything far larger is not one

# subcommand -> (module, handler, one-line help); the module has `add_arguments(parser)`
_LAZY = {
    "read-document": ("ekyc.document.reader", "cli_read_document",
                      "read a card image (front, optional back): QR, MRZ, printed fields"),
    "evaluate-documents": ("ekyc.document.evaluate", "cli_evaluate_documents",
                           "evaluate the reader on a directory of generated cards"),
    "compare": ("ekyc.face.compare", "cli_compare",
                "compare the faces of two images: distance and accept/review/reject"),
    "evaluate-faces": ("ekyc.face.evaluate", "cli_evaluate_faces",
                       "evaluate the face matcher on a labelled face folder (manifest.json)"),
}


def _read_stdin() -> str:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer.read(MAX_STDIN).decode("utf-8", "replace")
    return sys.stdin.read(MAX_STDIN)


def _parse_mrz(args: argparse.Namespace) -> int:
    from ekyc.document.mrz import parse_mrz

    result = parse_mrz(_read_stdin(), today=args.today)
    json.dump(result.to_dict(), sys.stdout, indent=args.indent)  # ASCII-safe on any stdout
    sys.stdout.write("\n")
    return EXIT_VALID if result.valid else EXIT_INVALID


def _run_lazy(command: str, argv: list[str]) -> int:
    module_name, handler_name, _ = _LAZY[command]
    try:
        module = importlib.import_module(module_name)
        add_arguments = module.add_arguments
        handler = getattr(module, handler_name)
    except (ImportError, AttributeError) as exc:
        print(f"ekyc {command}: not available in this installation ({module_name}: {exc})",
              file=sys.stderr)
        return EXIT_USAGE
    parser = argparse.ArgumentParser(prog=f"ekyc {command}", description=_LAZY[command][2])
    add_arguments(parser)
    return int(handler(parser.parse_args(argv)) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (the lazy subcommands' own options are added when they run)."""
    parser = argparse.ArgumentParser(prog="ekyc", description="DinhDanh eKYC tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mrz = sub.add_parser("parse-mrz", help="parse and check MRZ lines read from stdin",
                         description="Read MRZ lines (TD1, TD2, TD3, MRV-A/B) on stdin, print "
                                     "one JSON object; exit 0 when valid, 1 when not.")
    mrz.add_argument("--today", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                     help="reference date for two-digit years (default: today)")
    mrz.add_argument("--indent", type=int, default=None, help="pretty-print the JSON")
    mrz.set_defaults(handler=_parse_mrz)
    for name, (_, _, text) in _LAZY.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (argparse's own exits included)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in _LAZY:
            return _run_lazy(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except SystemExit as exc:  # --help and usage errors from argparse
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except BrokenPipeError:  # the reader of our stdout went away (`| head`)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
