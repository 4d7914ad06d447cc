"""`improved-nnunet train` (not implemented yet)."""
from ImprovedNNUNetLib.errors import UserError


def add_parser(sub):
    sub.add_parser("train", help="(not implemented yet)")


def run(args):
    raise UserError("train is not implemented yet")
