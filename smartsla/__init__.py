"""smart-sla: service level agreements whose terms and penalties live in Solidity contracts.

The terms file (YAML) is parsed by :mod:`smartsla.terms`, user values by
:mod:`smartsla.units`, and :mod:`smartsla.penalty` is the Python reference of
the on-chain penalty maths.
"""

__version__ = "0.1.0"
