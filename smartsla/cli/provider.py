"""``smartsla provider``: being written."""


def register(sub) -> None:
    return None
