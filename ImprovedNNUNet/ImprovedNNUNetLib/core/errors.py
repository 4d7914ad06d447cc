"""The one exception type that reaches users as a one-line message, and file-system errors as such messages."""
import errno
import shutil
from pathlib import Path


class UserError(Exception):
    """Bad input or environment: the message names the problem and the fix.

    The command line prints it as a single line and exits non-zero; the Slicer
    modules show it in an error dialog. Anything else is a bug and keeps its traceback.
    """


def describe_os_error(exc: OSError) -> str:
    """A one-line message for a file-system error (full disk, permissions, ...) with its fix."""
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (f"no space left on the device{where}; free disk space or write to a folder on another disk, "
                "then run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror}{where}; choose a folder you can write to"
    name = exc.filename or "a path"
    if exc.errno == errno.EEXIST:
        return f"{name} already exists and is not a folder; give a path that is free or a folder"
    if exc.errno == errno.ENOTDIR:
        return f"{name} is not a folder (a file, pipe or device is in the way); give a folder path"
    if exc.errno == errno.EISDIR:
        return f"{name} is a folder; give a file path"
    return f"{exc.strerror or exc}{where}"


LOW_DISK_BYTES = 16 * 2**20


def full_disk_error(path) -> OSError | None:
    """An ENOSPC ``OSError`` for ``path`` when the disk holding it is (nearly) full, else None.

    Libraries such as ITK and PyTorch report a failed write as a RuntimeError of their own; this
    tells a full disk apart so the user gets the cause and the fix instead of their message.
    """
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if shutil.disk_usage(folder).free < LOW_DISK_BYTES:
        return OSError(errno.ENOSPC, "No space left on device", str(path))
    return None
