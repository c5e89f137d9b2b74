"""The king: the network's gateway and coordinator (DESIGN.md §1, §5).

So far: the control API that queens dial (bridge attestations) and the follower of GPURental's
settlements on Ethereum.
"""
