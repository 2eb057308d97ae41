"""The one exception type for the user's mistakes: shown as one line, never as a traceback."""


class WMError(Exception):
    """A bad input (file, flag, config) described in one line that names what is wrong."""
