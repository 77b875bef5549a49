#!/usr/bin/env bash
# Runs on the control plane for one upload of a model store.
#   ACTION=sync:   check the files CopyToRemote staged under the login user's home
#                  against the manifest on stdin (`<sha256>  <name>` lines), then
#                  replace TARGET in the claim with them, through a short-lived pod
#                  that mounts the claim. The claim never holds a half-written
#                  target: the files land beside it and take its place at the end.
#   ACTION=remove: delete TARGET from the claim, and the staged files (the upload
#                  entry was removed from the stack). A claim that is already gone
#                  has nothing to remove: that only warns.
# Safe to run again: both actions start from whatever a stopped run left.
#
# Inputs (environment): ACTION, NAMESPACE, CLAIM, TARGET (path in the claim),
#   KIND (directory or file), STAGING (relative to LOGIN_USER's home), LOGIN_USER,
#   HELPER_IMAGE, POD (the helper pod's name), TIMEOUT_SECONDS.
set -euo pipefail
SCRIPT_NAME=upload-to-claim
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTION:?}" "${NAMESPACE:?}" "${CLAIM:?}" "${TARGET:?}" "${KIND:?}" "${STAGING:?}"
: "${LOGIN_USER:?}" "${HELPER_IMAGE:?}" "${POD:?}" "${TIMEOUT_SECONDS:=900}"

home=$(getent passwd "$LOGIN_USER" | cut -d: -f6 || true)
[ -n "$home" ] || die "no user ${LOGIN_USER} on this node"
stage="$home/$STAGING"
work=$(mktemp -d)
cleanup() {
  kubectl_admin -n "$NAMESPACE" delete pod "$POD" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The pod's side, run with the target as $1. Files go to <target>.uploading first.
# shellcheck disable=SC2016  # expanded by the pod's shell, not this one
put_directory='set -eu; t="/mnt/claim/$1"; rm -rf "$t.uploading"; mkdir -p "$t.uploading"
tar -xf - -C "$t.uploading"; chmod -R a+rX "$t.uploading"; rm -rf "$t"; mv "$t.uploading" "$t"'
# shellcheck disable=SC2016
put_file='set -eu; t="/mnt/claim/$1"; mkdir -p "$(dirname "$t")"; cat >"$t.uploading"
chmod a+r "$t.uploading"; rm -rf "$t"; mv "$t.uploading" "$t"'
# shellcheck disable=SC2016
remove_target='rm -rf -- "/mnt/claim/$1" "/mnt/claim/$1.uploading"'

start_pod() {
  # A pod of an earlier, stopped run has the same name: replace it.
  kubectl_admin -n "$NAMESPACE" delete pod "$POD" --ignore-not-found --wait=true >/dev/null
  kubectl_admin apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ${POD}
  namespace: ${NAMESPACE}
  labels:
    app.kubernetes.io/managed-by: kserve-cluster
    kserve-cluster/upload-claim: ${CLAIM}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: upload
      image: ${HELPER_IMAGE}
      command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
      volumeMounts:
        - name: claim
          mountPath: /mnt/claim
  volumes:
    - name: claim
      persistentVolumeClaim:
        claimName: ${CLAIM}
EOF
  if ! kubectl_admin -n "$NAMESPACE" wait --for=condition=Ready "pod/$POD" \
      --timeout="${TIMEOUT_SECONDS}s" >/dev/null; then
    kubectl_admin -n "$NAMESPACE" describe pod "$POD" 2>/dev/null | tail -n 15 >&2 || true
    die "the upload pod ${NAMESPACE}/${POD} did not start within ${TIMEOUT_SECONDS}s. Check the claim ('kubectl -n ${NAMESPACE} describe pvc ${CLAIM}': is there a StorageClass, does it bind?) and that ${HELPER_IMAGE} can be pulled."
  fi
}

case "$ACTION" in
  sync)
    cat >"$work/manifest"
    [ -s "$work/manifest" ] || die "no manifest on stdin: nothing says which files to upload"
    [ -d "$stage" ] || die "the staged files are missing (${stage}). They are copied there by the upload's CopyToRemote steps; replace them with 'pulumi up --replace <urn>' (pulumi stack --show-urns lists the stage-... resources)."
    if ! (cd "$stage" && sha256sum --check --strict --quiet "$work/manifest") >"$work/check" 2>&1; then
      die "the staged files in ${stage} differ from what pulumi sent: $(grep -v '^sha256sum:' "$work/check" | head -n 5 | tr '\n' ';') Replace the stage-... resources of this upload with 'pulumi up --replace <urn>'."
    fi
    sed -E 's/^[0-9a-f]{64}  //' "$work/manifest" | LC_ALL=C sort >"$work/names"
    # Files staged for an earlier version of this upload are not part of it any more.
    (cd "$stage" && find . -type f -printf '%P\n') | LC_ALL=C sort >"$work/staged"
    LC_ALL=C comm -23 "$work/staged" "$work/names" | while IFS= read -r stale; do
      rm -f -- "${stage:?}/$stale"
    done
    count=$(wc -l <"$work/names")
    bytes=$(cd "$stage" && tr '\n' '\0' <"$work/names" | xargs -0 stat -c %s | awk '{s += $1} END {print s + 0}')
    start_pod
    if [ "$KIND" = directory ]; then
      tr '\n' '\0' <"$work/names" | tar -C "$stage" --null -T - -cf - \
        | kubectl_admin -n "$NAMESPACE" exec -i "$POD" -- sh -c "$put_directory" sh "$TARGET"
    else
      kubectl_admin -n "$NAMESPACE" exec -i "$POD" -- sh -c "$put_file" sh "$TARGET" \
        <"$stage/$(head -n 1 "$work/names")"
    fi
    log "uploaded ${count} file(s), ${bytes} bytes, to claim ${NAMESPACE}/${CLAIM} at ${TARGET}"
    ;;
  remove)
    if kubectl_admin -n "$NAMESPACE" get pvc "$CLAIM" >/dev/null 2>&1; then
      start_pod
      kubectl_admin -n "$NAMESPACE" exec -i "$POD" -- sh -c "$remove_target" sh "$TARGET" </dev/null
      log "removed ${TARGET} from claim ${NAMESPACE}/${CLAIM}"
    else
      log "WARNING: claim ${NAMESPACE}/${CLAIM} is gone: nothing to remove from it"
    fi
    rm -rf -- "$stage"
    ;;
  *) die "unknown ACTION '${ACTION}' (sync or remove)" ;;
esac
