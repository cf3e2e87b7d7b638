"""The exceptions the library raises on purpose; the command line prints them as one line."""


class MSLesionAIError(Exception):
    """Base class: a problem the user can act on, reported without a traceback."""


class InputError(MSLesionAIError):
    """An input image or option is not usable; the message names the input and the problem."""


class BundleError(MSLesionAIError):
    """A model bundle is missing, malformed, or its weights fail the checksum."""


class Cancelled(MSLesionAIError):
    """The user cancelled long work (Cancel button, Ctrl-C, SIGTERM)."""
