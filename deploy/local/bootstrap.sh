#!/usr/bin/env bash
# Installs the system tools the local stack needs when they are missing: a Java 17 JDK and Maven (Kafka's jars
# come from Maven Central), PostgreSQL 15 binaries, Python's venv, and Prometheus with promtool (the tests
# start a real Prometheus on loopback and check the alert rules; the package's own service is not used).
# Uses apt-get (Debian/Ubuntu) as root or through sudo; elsewhere it says what is missing and stops.
set -euo pipefail

missing=()
# The JDK, not only the runtime: the stack runs deploy/local/kafka/KafkaAccess.java from source.
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
[ -x /usr/lib/postgresql/15/bin/postgres ] || command -v pg_config >/dev/null 2>&1 || missing+=(postgresql-15)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install ${missing[*]} with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
