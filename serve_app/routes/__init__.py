"""The HTTP routes, one module per resource: health, the model, tasks. Each route validates,
then delegates to the ingress replica's services (serve_app/replica.py)."""
