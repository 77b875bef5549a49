"""The load test behind scripts/loadtest.py: an open- or closed-loop V1 client,
replica sources, figures and the plot."""
