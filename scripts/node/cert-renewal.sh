#!/usr/bin/env bash
# Install the certificate renewal timer on a control plane: the renewal program
# (on stdin, cert-renew.sh with lib.sh inlined) as /usr/local/sbin/kserve-cert-renew,
# and kserve-cert-renewal.service with its timer, twice a day. Safe to run again;
# cert-renewal-remove.sh takes it all away.
#
# Inputs (environment): RENEW_BEFORE_DAYS, LOGIN_USER.
set -euo pipefail
SCRIPT_NAME=cert-renewal
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${RENEW_BEFORE_DAYS:?}" "${LOGIN_USER:?}"
case "$RENEW_BEFORE_DAYS" in ''|*[!0-9]*) die "RENEW_BEFORE_DAYS must be whole days, got '$RENEW_BEFORE_DAYS'." ;; esac
[ -f /etc/kubernetes/admin.conf ] || die "/etc/kubernetes/admin.conf is missing: kubeadm init has not completed on this node."

program=/usr/local/sbin/kserve-cert-renew
unit=/etc/systemd/system/kserve-cert-renewal.service
timer=/etc/systemd/system/kserve-cert-renewal.timer
changed=""
if cat | write_if_changed "$program" 0755; then changed="$changed $program"; fi
[ -s "$program" ] || die "no renewal program on stdin."
if write_if_changed "$unit" 0644 <<UNIT; then changed="$changed $unit"; fi
[Unit]
Description=kserve-cluster: renew the control plane's certificates before they expire
After=kubelet.service

[Service]
Type=oneshot
Environment=RENEW_BEFORE_DAYS=$RENEW_BEFORE_DAYS
Environment=LOGIN_USER=$LOGIN_USER
ExecStart=$program
UNIT
if write_if_changed "$timer" 0644 <<'TIMER'; then changed="$changed $timer"; fi
[Unit]
Description=kserve-cluster: check the control plane's certificates twice a day

[Timer]
OnCalendar=*-*-* 03,15:00:00
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
TIMER
if [ -n "$changed" ]; then
  log "written:$changed"
  systemctl daemon-reload
fi
systemctl enable --now kserve-cert-renewal.timer
log "kserve-cert-renewal.timer enabled: renews when fewer than $RENEW_BEFORE_DAYS days are left"
