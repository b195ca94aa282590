"""Deploy tools (not deployed): cloudbuild generator, packaging, scheduler job, firebase jars."""
