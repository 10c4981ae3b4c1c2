#!/usr/bin/env bash
# Prints a .env for deploy/compose/ with what this host needs and fresh secrets:
#   (umask 077; deploy/compose/make-env.sh > deploy/compose/.env)
# Everything else keeps the defaults listed (commented) in .env.example. Keep the file:
# the managers' data holds the secrets' effects (the bootstrapped management token), so
# a cluster brought up again needs the same ones.
set -euo pipefail

socket="${DOCKER_SOCKET:-/var/run/docker.sock}"
if [ ! -S "$socket" ]; then
  echo "error: no Docker socket at $socket (set DOCKER_SOCKET)" >&2
  exit 1
fi

secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

cat <<ENV
# Made by deploy/compose/make-env.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ); see .env.example.
COMPOSE_PROJECT_NAME=gantry
DOCKER_GID=$(stat -c %g "$socket")
DOCKER_SOCKET=$socket
GANTRY_CLUSTER_SECRET=$(secret)
GANTRY_MANAGEMENT_TOKEN=$(secret)
GANTRY_JOIN_TOKEN=$(secret)
ENV
