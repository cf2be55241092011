"""``smartsla accounts``: being written."""


def register(sub) -> None:
    return None
