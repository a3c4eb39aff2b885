"""Planning orchestration: case context, stage registry, pipeline, plan schema, parameter files."""
