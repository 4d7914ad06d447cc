"""The one exception type that reaches users as a one-line message."""


class UserError(Exception):
    """Bad input or environment: the message names the problem and the fix.

    The command line prints it as a single line and exits non-zero; the Slicer
    modules show it in an error dialog. Anything else is a bug and keeps its traceback.
    """


def describe_os_error(exc: OSError) -> str:
    """A one-line message for a file-system error (full disk, permissions, ...) with its fix."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (f"no space left on the device{where}; free disk space or write to a folder on another disk, "
                "then run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror}{where}; choose a folder you can write to"
    return f"{exc.strerror or exc}{where}"
