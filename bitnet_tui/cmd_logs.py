"""Commands: filled in below."""


def register(app):
    return None
