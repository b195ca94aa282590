"""Dead-letter recorders: every message Pub/Sub gave up on is stored where a person finds it."""
