"""Preflight: check every node before anything on it changes.

The same checks serve `scripts/preflight.py` (over paramiko) and `pulumi up`
(a read-only remote.Command per node whose answer gates every node's
preparation): `scripts/node/preflight-facts.sh` gathers facts, and
`checks.py` alone decides what passes.
"""
