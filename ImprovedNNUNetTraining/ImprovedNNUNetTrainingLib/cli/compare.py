"""`improved-nnunet compare` (not implemented yet)."""
from ImprovedNNUNetLib.errors import UserError


def add_parser(sub):
    sub.add_parser("compare", help="(not implemented yet)")


def run(args):
    raise UserError("compare is not implemented yet")
