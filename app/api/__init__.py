"""JSON API routers, one per resource. Thin: validation in, crud/service call, schema out."""
