"""Usage ingest (`on-usage-event`): each usage event -> exactly one record."""
