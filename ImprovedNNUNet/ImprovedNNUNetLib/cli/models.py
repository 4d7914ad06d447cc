"""`improved-nnunet models` (not implemented yet)."""
from ..errors import UserError


def add_parser(sub):
    sub.add_parser("models", help="(not implemented yet)")


def run(args):
    raise UserError("models is not implemented yet")
