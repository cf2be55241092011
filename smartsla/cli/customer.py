"""``smartsla customer``: being written."""


def register(sub) -> None:
    return None
