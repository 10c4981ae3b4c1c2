#!/bin/sh
# Run by the compose service `acl-bootstrap` (busybox sh in the gantry/gantry image) on
# every `up`, before the agents start:
#   1. bootstraps ACL with the management token of .env (GANTRY_MANAGEMENT_TOKEN), once
#      per cluster: later runs find it done (409);
#   2. makes the join token of .env (GANTRY_JOIN_TOKEN) the cluster's, so the agents,
#      which present it, can register.
# With ACL off on the managers (GANTRY_ACL=false) there is nothing to do.
set -u
: "${GANTRY_MANAGERS:?}" "${GANTRY_MANAGEMENT_TOKEN:?}" "${GANTRY_JOIN_TOKEN:?}"
managers=$(echo "$GANTRY_MANAGERS" | tr ',' ' ')

# post PATH BODY [TOKEN]: POSTs to the first manager that answers and prints the HTTP
# status it answered with (nothing when none answered).
post() {
  auth="X-Gantry-Client: acl-bootstrap"
  [ -n "${3:-}" ] && auth="Authorization: Bearer $3"
  for m in $managers; do
    out=$(timeout 10 wget -S -O /dev/null --header 'Content-Type: application/json' \
      --header "$auth" --post-data "$2" "http://$m$1" 2>&1)
    status=$(echo "$out" | grep -o 'HTTP/1\.[01] [0-9][0-9][0-9]' | tail -n 1 | cut -d' ' -f2)
    if [ -n "$status" ]; then
      echo "$status"
      return
    fi
  done
}

# until_answer PATH BODY [TOKEN]: post until a manager answers with something other than
# 503 (no leader yet), for two minutes at most.
until_answer() {
  i=0
  while :; do
    status=$(post "$@")
    case "$status" in
      ""|503) ;;
      *) echo "$status"; return ;;
    esac
    i=$((i + 1))
    if [ "$i" -ge 120 ]; then
      echo "no manager answered $1 (last: ${status:-no answer})" >&2
      exit 1
    fi
    sleep 1
  done
}

status=$(until_answer /v1/acl/bootstrap "{\"secret\":\"$GANTRY_MANAGEMENT_TOKEN\"}")
case "$status" in
  201) echo "ACL bootstrapped with the management token of .env" ;;
  409) echo "ACL was bootstrapped before" ;;
  400) echo "ACL is off on the managers (or the management token of .env is shorter than 16 characters): nothing to do"
       exit 0 ;;
  *) echo "bootstrap: HTTP $status" >&2; exit 1 ;;
esac

status=$(until_answer /v1/acl/join-token/rotate "{\"join_token\":\"$GANTRY_JOIN_TOKEN\"}" "$GANTRY_MANAGEMENT_TOKEN")
case "$status" in
  200) echo "the join token of .env is the cluster's" ;;
  401|403) echo "warning: the management token of .env is not accepted (HTTP $status): it was revoked, or the" \
         "cluster was bootstrapped with another one; the join token was left as it is, and agents presenting" \
         "another one are refused (set GANTRY_JOIN_TOKEN to the cluster's)" >&2 ;;
  *) echo "join token: HTTP $status" >&2; exit 1 ;;
esac
