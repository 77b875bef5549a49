"""etcd snapshots on the control planes, and the backup/restore commands (issue 17, section 2)."""
