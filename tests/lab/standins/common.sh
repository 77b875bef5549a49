# Sourced by every stand-in. Stand-ins replace the tools that need the kernel, the
# init system or the internet; they record each call and keep their state on the
# node (under /var/lib/lab, inside the node's private /var) like the real tools.
# @LAB_STANDINS@ and @LAB_PYTHON@ are filled in when the lab is created.
# shellcheck shell=bash
LAB_STANDINS=@LAB_STANDINS@
LAB_PYTHON=@LAB_PYTHON@
LAB_STATE=/var/lib/lab
LAB_CALLS=/var/log/lab/calls.log
LAB_DELAYS=/var/log/lab/delays.log
export LAB_STANDINS LAB_PYTHON LAB_STATE LAB_CALLS LAB_DELAYS

# Times are ${EPOCHREALTIME/,/.}: what `date +%s.%N` prints, without starting a
# process. Every call of every stand-in logs, so the lab's own CPU (noise in the
# benchmark) is kept low by forking nothing here that bash can do itself.

# One line per planted delay a stand-in serves: time, step, seconds, the call's
# arguments (benchmarks add the delays up along the dependency graph: the
# critical path of planted delays; the arguments tell concurrent commands apart).
lab_planted() {
  { { [ -d "${LAB_DELAYS%/*}" ] || mkdir -p "${LAB_DELAYS%/*}"; } \
      && printf '%s\t%s\t%s\t%s\n' "${EPOCHREALTIME/,/.}" "$1" "$2" "${LAB_CALL_ARGS:-}" >>"$LAB_DELAYS"; } \
    2>/dev/null || true
}

# One line per call: time, tool, arguments (%q-quoted, so they split back exactly).
lab_record() {
  local tool=$1 line quoted
  shift
  LAB_CALL_ARGS="$*"
  printf -v line '%s\t%s' "${EPOCHREALTIME/,/.}" "$tool"
  if [ "$#" -gt 0 ]; then
    printf -v quoted '%q ' "$@"
    line+=$'\t'$quoted
  fi
  # Calls made without root (the read-only preflight facts) may not reach the log.
  { { [ -d "${LAB_CALLS%/*}" ] || mkdir -p "${LAB_CALLS%/*}"; } && printf '%s\n' "$line" >>"$LAB_CALLS"; } \
    2>/dev/null || [ "$EUID" != 0 ]
}

# Faults the harness plants for a step (STEP is e.g. apt-get-install, kubeadm-join):
#   faults/STEP.delay  seconds to sleep first (a slow step)
#   faults/STEP.fail   how many more calls fail ("always" for every call);
#                      faults/STEP.message is printed on stderr when one does.
# `lab_fault STEP fail-only` skips the delay: a stand-in that models its delay
# itself (kubectl wait: a node already Ready answers at once) reads it there.
lab_fault() {
  local step=$1 dir=$LAB_STATE/faults delay left
  if [ -s "$dir/$step.delay" ] && [ "${2:-}" != fail-only ]; then
    read -r delay <"$dir/$step.delay" || true
    lab_planted "$step" "$delay"
    sleep "$delay"
  fi
  [ -e "$dir/$step.fail" ] || return 0
  exec 9>>"$dir/.lock"
  flock 9
  read -r left <"$dir/$step.fail" || true
  case "$left" in
    always) ;;
    ''|0) exec 9>&-; return 0 ;;
    *) echo $((left - 1)) >"$dir/$step.fail" ;;
  esac
  exec 9>&-
  cat "$dir/$step.message" >&2 2>/dev/null || echo "lab: injected failure of $step" >&2
  exit "$(cat "$dir/$step.status" 2>/dev/null || echo 1)"
}
