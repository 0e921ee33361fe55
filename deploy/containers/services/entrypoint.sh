#!/bin/sh
# What the OMS image runs, chosen by its first argument:
#   capture | allocation | ...  a service, any under services/ (HTTP on OMS_HTTP_PORT, every interface)
#   simulator                the warehouses, carriers and payment provider stand-in (deploy/local/simulator.py)
#   mailsink                 the SMTP sink on port 1025, into the Maildir /var/mail/oms
#   oms ARGS...              the operator's command line
#   ready                    exit 0 when the service in this container answers /readyz (health checks)
set -eu
what="${1:-oms}"
# Each instance names its Kafka clients and database sessions after its container (one per replica when scaled).
export OMS_INSTANCE="${OMS_INSTANCE:-$(hostname)}"
[ $# -gt 0 ] && shift
if [ -f "/opt/oms/services/$what/__main__.py" ]; then
  exec python -m "services.$what" "$@"
fi
case "$what" in
  simulator)
    exec python -m deploy.local.simulator "$@" ;;
  mailsink)
    # A Maildir's three folders: a fresh volume mounted there is an empty directory.
    mkdir -p /var/mail/oms/cur /var/mail/oms/new /var/mail/oms/tmp
    exec python -m deploy.local.mailsink --listen 0.0.0.0:1025 /var/mail/oms ;;
  oms)
    exec python -m deploy.cli "$@" ;;
  ready)
    [ -n "${OMS_HTTP_PORT:-}" ] || exit 0  # the simulator and the sink serve no HTTP
    exec python -c "import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${OMS_HTTP_PORT}/readyz', timeout=2).status == 200 else 1)
except OSError:
    sys.exit(1)" ;;
  *)
    echo "usage: SERVICE (one of services/)|simulator|mailsink|oms ARGS|ready" >&2
    exit 2 ;;
esac
