"""The smart-sla oracle (`sla-oracle`): probes, storage, period maths, evidence, signing, submission.

It depends on :mod:`smartsla`; smartsla never imports this package.
"""

__version__ = "0.1.0"
