"""``smartsla audit``: being written."""


def register(sub) -> None:
    return None
