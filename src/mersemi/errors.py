"""User-facing errors: the CLI prints these as one line, without a traceback."""

import errno
import re
import sys

# Longest line an error prints: a value pasted into a CSV cell can be megabytes long.
MAX_LINE = 400


class InputError(Exception):
    """Bad user input (a file, a row, a config value). The message names what is wrong and where."""


def shorten(value, limit: int = 80) -> str:
    """repr(value), its middle elided past `limit` characters (error messages echo values)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]} ({len(str(value))} characters)"


def one_line(message: str, limit: int = MAX_LINE) -> str:
    """A message as one line of at most `limit` characters (the middle elided)."""
    text = " ".join(str(message).split())
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


# File-system refusals a user fixes outside the program, and the exit code of each.
FS_ERRORS = {
    errno.ENOSPC: ("disk full (no space left on device)", 3),
    errno.EDQUOT: ("disk quota exceeded", 3),
    errno.EROFS: ("read-only file system", 4),
    errno.EACCES: ("permission denied", 4),
    errno.EPERM: ("operation not permitted", 4),
}


def file_system_error(e: OSError) -> tuple[str, int] | None:
    """(one line naming the path, exit code) for a full, read-only or forbidden file system,
    None for any other OSError (a bug, or a case the caller handles)."""
    if e.errno not in FS_ERRORS:
        return None
    what, code = FS_ERRORS[e.errno]
    # h5py puts the file name inside its message.
    named = re.search(r"filename = '([^']*)'", str(e))
    where = e.filename or (named[1] if named else None)
    fix = "free space, then rerun" if code == 3 else "choose a writable folder (`results:`)"
    return f"{what}{f' writing {where}' if where else ''}; {fix}", code


def report_error(e: BaseException, prog: str) -> int | None:
    """For an error the user fixes, print `<prog>: error: <one line>` to stderr and return the
    exit code: bad input 2, a full disk 3, a read-only or forbidden folder 4. None (nothing
    printed) for any other error, a bug whose traceback the caller lets through. The one copy of
    this mapping: the CLI's subcommands and the workflow's load (mersemi.workflow) use it."""
    if isinstance(e, InputError):
        message, code = str(e), 2
    elif isinstance(e, OSError) and (found := file_system_error(e)) is not None:
        message, code = found  # the temp file is already removed (atomic writes)
    else:
        return None
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return code
