"""The one exception type for problems the user can fix.

The CLI prints a `TrouterError` as a single line and exits non-zero, with no traceback: the
message must say what is wrong and, where possible, what to do about it. Bugs stay ordinary
exceptions so that their tracebacks reach us.
"""

from __future__ import annotations


class TrouterError(Exception):
    """A user-fixable problem: bad input, a missing file, an unknown name, an exhausted budget."""


class DataError(TrouterError):
    """A dataset, file or column that cannot be used as given."""


class ConfigError(TrouterError):
    """A pool, profile, router directory or option that does not make sense."""
