"""The HTTP layer: request context, problem+json (domain errors to statuses), auth, limits,
validation, health and metrics. Domain code never imports it."""
