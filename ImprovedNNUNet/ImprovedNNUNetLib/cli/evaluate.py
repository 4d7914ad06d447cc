"""`improved-nnunet evaluate` (not implemented yet)."""
from ..errors import UserError


def add_parser(sub):
    sub.add_parser("evaluate", help="(not implemented yet)")


def run(args):
    raise UserError("evaluate is not implemented yet")
