"""Entry point of `improved-nnunet` (also `python -m ImprovedNNUNetLib`).

Each sub-command lives in its own module exposing ``add_parser(subparsers)`` and
``run(args) -> int``. Modules import their heavy dependencies (torch, nnU-Net)
inside ``run`` so that ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ImprovedNNUNetLib.core.errors import UserError, describe_os_error

COMMANDS = {
    "evaluate": "ImprovedNNUNetLib.cli.evaluate",
    "prepare": "ImprovedNNUNetTrainingLib.cli.prepare",
    "train": "ImprovedNNUNetTrainingLib.cli.train",
    "predict": "ImprovedNNUNetLib.cli.predict",
    "ensemble": "ImprovedNNUNetLib.cli.ensemble",
    "find-best": "ImprovedNNUNetTrainingLib.cli.find_best",
    "compare": "ImprovedNNUNetTrainingLib.cli.compare",
    "models": "ImprovedNNUNetLib.cli.models",
    "study": "ImprovedNNUNetTrainingLib.cli.study",
    "serve": "ImprovedNNUNetLib.cli.serve",
    "jobs": "ImprovedNNUNetLib.cli.remote",
}


def package_version() -> str:
    """The installed distribution's version (a source checkout without installation says so)."""
    from importlib import metadata

    try:
        return metadata.version("improved-nnunet")
    except metadata.PackageNotFoundError:
        return "(not installed: source checkout)"


class OneLineErrorParser(argparse.ArgumentParser):
    """Argument errors as one line that says where the help is (argparse prints the whole usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = OneLineErrorParser(
        prog="improved-nnunet",
        description="Train improved nnU-Net v2 variants, segment images and evaluate segmentations.",
    )
    parser.add_argument("--version", action="version", version=f"improved-nnunet {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = {}
    for name, dotted in COMMANDS.items():
        module = importlib.import_module(dotted)
        module.add_parser(sub)
        modules[name] = module
    return parser, modules


def main(argv: list[str] | None = None) -> int:
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(modules[args.command].run(args) or 0)
        sys.stdout.flush()  # a pipe whose reader has gone shows here, in the handling below, not at exit
        return status
    except UserError as exc:
        print(f"improved-nnunet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError as exc:
        if not reader_gone():
            print(f"improved-nnunet {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
            return 2
        return quiet_after_closed_pipe()
    except OSError as exc:  # full disk, permissions: the cause and the fix, not a traceback
        print(f"improved-nnunet {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"improved-nnunet {args.command}: interrupted", file=sys.stderr)
        return 130


SIGPIPE_STATUS = 141  # what a shell reports for a program its pipe's reader left (128 + SIGPIPE)


def reader_gone() -> bool:
    """Whether the reader of standard output has closed it (``… | head``): the write end of such a pipe polls as
    an error. False where this cannot be told (no poll on Windows, no real file)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def quiet_after_closed_pipe() -> int:
    """End quietly, as other command-line tools do when ``head`` has read enough: what is still buffered goes
    to /dev/null instead of a "Broken pipe" message at exit."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return SIGPIPE_STATUS


if __name__ == "__main__":
    sys.exit(main())
