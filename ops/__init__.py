"""Operators' tools (not deployed): the `blueprint` CLI, migration, seed, report, JSON Schema."""
