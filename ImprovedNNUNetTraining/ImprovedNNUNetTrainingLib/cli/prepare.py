"""`improved-nnunet prepare` (not implemented yet)."""
from ImprovedNNUNetLib.errors import UserError


def add_parser(sub):
    sub.add_parser("prepare", help="(not implemented yet)")


def run(args):
    raise UserError("prepare is not implemented yet")
