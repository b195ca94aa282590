"""The pipeline's read path of customer configuration: ports, answers, overrides, trust, cache,
service and adapters (public import path: `shared.config_service`)."""
