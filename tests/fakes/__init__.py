"""Fakes of the chain, the queens and other peers, shared by the fast unit tests and the benches."""
