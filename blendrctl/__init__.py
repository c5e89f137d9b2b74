"""The ``blendr`` command line: the composition root that wires the shared core (:mod:`blendr`) to the roles.

Only this package imports the role packages (``king``, ``queen``, ``provider``); the shared core never does
(tests/unit/test_layering.py checks it). Each command imports its role where it runs, so ``blendr --help``
loads neither the roles nor ray, grpc or web3.
"""
