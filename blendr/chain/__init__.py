"""The chain layer: contract artifacts, anvil dev chains, typed contract clients, deployment.

``web3`` is imported lazily by the modules that talk to a chain, so importing :mod:`blendr.chain`
stays cheap for nodes that never touch one.
"""
