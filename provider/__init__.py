"""The provider agent: discovers its GPUs, joins a queen's pool and answers proof-of-GPU challenges."""
