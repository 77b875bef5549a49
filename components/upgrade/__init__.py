"""Upgrading a running cluster's Kubernetes, one minor at a time (kubeadm's order).

`config.py` reads `upgrade.*`; `plan.py` turns the versions observed on the nodes
into the ordered steps (pure, tested alone); `upgrade.py` runs them as remote
commands triggered only by a change of `kubernetes.version`.
"""
