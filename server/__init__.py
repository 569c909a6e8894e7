"""tagd reference server: the OpenAPI contract (openapi.yaml), its Flask/waitress implementation and admin CLI."""
