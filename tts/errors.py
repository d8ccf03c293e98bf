class VoiceError(Exception):
    """A voice that cannot be used; the message says how to fix it."""
