"""Usage ingest (`on-usage-event`): each usage event -> one record + one counter-shard increment."""
