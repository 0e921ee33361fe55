#!/usr/bin/env bash
# The container engine the compose stack, the project's images and testcontainers run on, made ready by the
# project's own file (idempotent: each step is skipped when already done).
#
#   deploy/containers/bootstrap.sh install     the engine and the base image (debian:bookworm)
#   deploy/containers/bootstrap.sh api-start   the Docker-compatible API socket (podman only; pid kept)
#   deploy/containers/bootstrap.sh api-stop    stop that socket's process, by its pid
#   deploy/containers/bootstrap.sh status      which engine, whether the base image and the socket are there
#
# Where a Docker daemon answers, it is used as it is: nothing is installed or configured, and a missing
# debian:bookworm is pulled. Otherwise podman from Debian's packages (with runc), and, when no registry gives
# debian:bookworm, a base image built from Debian's packages with mmdebstrap (see docs/containers.md).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${OMS_STATE_DIR:-$REPO/.stack}/containers"
API_SOCKET="${OMS_PODMAN_SOCKET:-/run/podman/podman.sock}"
API_PID="$STATE/podman-api.pid"
BASE_IMAGE="docker.io/library/debian:bookworm"
CONF=/etc/containers/containers.conf

say() { echo "engine: $*"; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

docker_daemon() {
  # A real Docker daemon (not a docker CLI talking to nothing, nor one pointed at our own podman socket).
  [ -z "${DOCKER_HOST:-}" ] || [ "${DOCKER_HOST}" != "unix://$API_SOCKET" ] || return 1
  command -v docker >/dev/null 2>&1 && docker info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

install_packages() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  [ ${#missing[@]} -eq 0 ] && { say "podman, runc, mmdebstrap present"; return; }
  command -v apt-get >/dev/null 2>&1 || { echo "no apt-get here: install ${missing[*]} yourself" >&2; exit 1; }
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

configure_podman() {
  # runc: crun refuses a mixed cgroup v1/v2 layout ("cgroups in hybrid mode not supported").
  # ulimits: podman's defaults (nofile 1048576) fail where the process may not raise its hard limit.
  local hard
  hard="$(ulimit -Hn)"
  [ "$hard" = unlimited ] && hard=1048576
  if [ -f "$CONF" ] && grep -q '^runtime = "runc"' "$CONF" && grep -q '^default_ulimits' "$CONF"; then
    say "$CONF already sets runc and ulimits"
    return
  fi
  if [ -f "$CONF" ] && grep -Eq '^\[(containers|engine)\]' "$CONF"; then
    echo "$CONF has its own [containers]/[engine] sections: add runtime = \"runc\" and" \
      "default_ulimits = [\"nofile=$hard:$hard\", \"nproc=32768:32768\"] there by hand" >&2
    exit 1
  fi
  say "writing runc and ulimits (nofile $hard) to $CONF"
  $sudo mkdir -p "$(dirname "$CONF")"
  $sudo tee -a "$CONF" >/dev/null <<CONFIG
# Written by deploy/containers/bootstrap.sh (see docs/containers.md for why).
[containers]
default_ulimits = ["nofile=$hard:$hard", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONFIG
}

debian_sources() {
  # "deb <uri> <suite> <components>" lines for bookworm from this machine's apt sources (deb822 or one-line).
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk 'function flush() { if (t ~ /deb( |$)/) { n = split(u, us, " "); m = split(s, ss, " ");
                                for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print "deb " us[i] " " ss[j] " " c }
                              t = u = s = c = "" }
           /^[ \t]*$/ { flush(); next }
           /^Types:/ { t = substr($0, 8) } /^URIs:/ { u = substr($0, 6) }
           /^Suites:/ { s = substr($0, 8) } /^Components:/ { c = substr($0, 12) }
           END { flush() }' "$f"
    done
    if [ -f /etc/apt/sources.list ]; then
      grep -E '^deb[ \t]' /etc/apt/sources.list | sed -E 's/\[[^]]*\] //' || true
    fi
  } | awk '$3 ~ /^bookworm/ { $1 = $1; print }' | sort -u
}

base_image() {
  if podman image exists "$BASE_IMAGE"; then
    say "$BASE_IMAGE present"
    return
  fi
  local sources
  sources="$(debian_sources)"
  if [ -z "$sources" ]; then
    echo "$BASE_IMAGE is absent and this machine's apt sources name no bookworm mirror: podman pull it" >&2
    exit 1
  fi
  say "building $BASE_IMAGE with mmdebstrap from: $(echo "$sources" | awk '{print $2, $3}' | tr '\n' ' ')"
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  # The machine's own added CA certificates: without them HTTPS (PyPI, Maven Central) fails inside builds
  # where an intercepting proxy signs the traffic.
  local hooks=()
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    hooks=(--customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"'
      --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"'
      --customize-hook='chroot "$1" update-ca-certificates')
  fi
  local args=()
  while IFS= read -r line; do args+=("$line"); done <<<"$sources"
  $sudo mmdebstrap --quiet --variant=minbase --include=ca-certificates --format=tar "${hooks[@]}" \
    bookworm "$work/base.tar" "${args[@]}"
  $sudo podman import --change 'CMD ["/bin/bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/base.tar" "$BASE_IMAGE" >/dev/null
  say "$BASE_IMAGE built"
}

api_pid() {
  local pid
  pid="$(cat "$API_PID" 2>/dev/null)" || return 1
  # Believed only while that process lives and is the podman service it was (pids get reused).
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "system service" && echo "$pid"
}

case "${1:-install}" in
  install)
    if docker_daemon; then
      say "a Docker daemon answers: using it as it is"
      docker image inspect debian:bookworm >/dev/null 2>&1 || docker pull debian:bookworm
      exit 0
    fi
    install_packages
    configure_podman
    base_image
    ;;
  api-start)
    if docker_daemon; then say "Docker's own socket serves the API"; exit 0; fi
    if pid="$(api_pid)"; then say "API already served on unix://$API_SOCKET (pid $pid)"; exit 0; fi
    mkdir -p "$STATE" "$(dirname "$API_SOCKET")"
    nohup podman system service --time=0 "unix://$API_SOCKET" >"$STATE/podman-api.log" 2>&1 &
    echo $! >"$API_PID"
    for _ in $(seq 100); do
      [ -S "$API_SOCKET" ] && { say "API on unix://$API_SOCKET (pid $(cat "$API_PID"))"; exit 0; }
      sleep 0.1
    done
    echo "the podman API did not open unix://$API_SOCKET; see $STATE/podman-api.log" >&2
    exit 1
    ;;
  api-stop)
    if pid="$(api_pid)"; then
      kill "$pid"
      say "API stopped (pid $pid)"
    else
      say "no API process of ours runs"
    fi
    rm -f "$API_PID"
    ;;
  status)
    if docker_daemon; then say "docker daemon"; exit 0; fi
    command -v podman >/dev/null 2>&1 || { say "no podman"; exit 0; }
    podman image exists "$BASE_IMAGE" && say "$BASE_IMAGE present" || say "$BASE_IMAGE absent"
    pid="$(api_pid)" && say "API on unix://$API_SOCKET (pid $pid)" || say "API not served"
    ;;
  *)
    echo "usage: $0 install|api-start|api-stop|status" >&2
    exit 2
    ;;
esac
