"""The one exception type for mistakes a user can make (bad file, bad flag, bad config)."""


class UserError(Exception):
    """A problem the user can fix; its message is one sentence, shown without a traceback."""
