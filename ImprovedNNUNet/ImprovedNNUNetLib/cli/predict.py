"""`improved-nnunet predict` (not implemented yet)."""
from ..errors import UserError


def add_parser(sub):
    sub.add_parser("predict", help="(not implemented yet)")


def run(args):
    raise UserError("predict is not implemented yet")
