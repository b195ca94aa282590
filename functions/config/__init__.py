"""Config-write triggers: stamp `created_at`/`updated_at` and announce cache invalidations."""
