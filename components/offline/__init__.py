"""The program evaluated offline under Pulumi's mock runtime (tests, plan, SSH lab)."""
