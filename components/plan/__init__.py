"""The offline plan: what `pulumi up` would create, as text, JSON and a graph."""
