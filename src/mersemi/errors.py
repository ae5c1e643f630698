"""User-facing errors: the CLI prints these as one line, without a traceback."""


class InputError(Exception):
    """Bad user input (a file, a row, a config value). The message names what is wrong and where."""
