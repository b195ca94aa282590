"""The pipeline's read path of customer configuration (public import: shared.config_service)."""
