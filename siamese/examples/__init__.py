"""Built-in examples: the shared-layer patterns and the basketball team-strength models."""
