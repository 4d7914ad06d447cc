"""The one exception type that reaches users as a one-line message."""


class UserError(Exception):
    """Bad input or environment: the message names the problem and the fix.

    The command line prints it as a single line and exits non-zero; the Slicer
    modules show it in an error dialog. Anything else is a bug and keeps its traceback.
    """
