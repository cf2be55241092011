"""``smartsla node``: being written."""


def register(sub) -> None:
    return None
