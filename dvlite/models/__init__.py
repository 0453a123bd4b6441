"""The model registry: versions and stage assignments of models as annotated git tags."""
