"""The Kubernetes objects that follow from the registries, written to deploy/kubernetes/base/generated/ for kustomize:
a KafkaTopic per registered topic, a KafkaUser per principal with the ACLs shared/backbone/kafka_access.py grants,
the CloudNativePG Cluster with one login role and schema per service, and each service's Deployment, Service,
PodDisruptionBudget, HorizontalPodAutoscaler, ServiceMonitor and NetworkPolicy.

    python -m deploy.kubernetes.generate           write the files (`make k8s-manifests`)
    python -m deploy.kubernetes.generate --check   exit 1 when the committed files differ from what it would write

The hand-written rest (the Kafka cluster, the kustomizations) lives beside it; a unit test keeps the files current.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.local.stack import postgres_setup
from shared.backbone import auth, kafka_access
from shared.backbone.ports import HTTP_BASE
from shared.contracts.topics import SERVICES, TOPICS, inputs

HERE = Path(__file__).resolve().parent
GENERATED = HERE / "base" / "generated"

KAFKA_CLUSTER = "oms-kafka"  # Strimzi names its bootstrap Service <cluster>-kafka-bootstrap
KAFKA_PORT = 9093  # the listener of base/kafka.yaml: SCRAM over TLS
KAFKA_BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap:{KAFKA_PORT}"
KAFKA_REPLICAS = 3
KAFKA_MIN_INSYNC = 2
DATABASE_CLUSTER = "oms-db"  # CloudNativePG's read-write Service is <cluster>-rw
DATABASE = "oms"
IMAGE = "oms"  # the image deploy/containers/services/Dockerfile builds; an overlay says where it is pulled from
IMAGE_USER = 10001  # the image's `oms` user
# The only writable place on the read-only root filesystem, as in the compose file: a memory-backed emptyDir.
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - the pod's own, not the node's


@dataclass(frozen=True)
class MountedCa:
    """A CA certificate the services check a server's certificate against, as its operator publishes it (a Secret
    with `ca.crt`), mounted read-only at `folder`. Only the certificate is mounted (CloudNativePG's secret also holds
    the CA's key)."""

    volume: str
    secret: str
    folder: str
    key = "ca.crt"

    @property
    def file(self) -> str:
        return f"{self.folder}/{self.key}"

    def as_volume(self) -> dict[str, Any]:
        items = [{"key": self.key, "path": self.key}]
        return {"name": self.volume, "secret": {"secretName": self.secret, "items": items, "defaultMode": 0o444}}

    def as_mount(self) -> dict[str, Any]:
        return {"name": self.volume, "mountPath": self.folder, "readOnly": True}


# Strimzi's cluster CA (<cluster>-cluster-ca-cert) and CloudNativePG's (<cluster>-ca).
KAFKA_CA = MountedCa("kafka-ca", f"{KAFKA_CLUSTER}-cluster-ca-cert", "/etc/oms/tls/kafka")
DATABASE_CA = MountedCa("database-ca", f"{DATABASE_CLUSTER}-ca", "/etc/oms/tls/database")
PART_OF = {"app.kubernetes.io/part-of": "oms"}
# The Prometheus that scrapes the services runs in this namespace (an overlay patches it where it differs).
MONITORING_NAMESPACE = "monitoring"
# Notifications reach the SMTP relay and the webhook targets outside the cluster on these ports only.
SMTP_PORT = 587
WEBHOOK_PORT = 443

HEADER = "# Written by `python -m deploy.kubernetes.generate` from the registries: edit the generator, not this file.\n"


def labels(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/component": "service", **PART_OF}


def selector(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, **PART_OF}


def db_secret(service: str) -> str:
    """The Secret (kubernetes.io/basic-auth, made by the operator) holding a service's database password."""
    return f"{DATABASE_CLUSTER}-{service}"


def kafka_secret(principal: str) -> str:
    """Strimzi's User Operator keeps a SCRAM user's generated password in a Secret named after the user."""
    return principal


# --- Kafka -----------------------------------------------------------------------------------------------------


def kafka_topics() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaTopic",
            "metadata": {"name": topic.name, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF}},
            "spec": {
                "topicName": topic.name,
                "partitions": topic.partitions,
                "replicas": KAFKA_REPLICAS,
                "config": {"min.insync.replicas": KAFKA_MIN_INSYNC, **topic.config},
            },
        }
        for topic in TOPICS
    ]


def acl(grant: kafka_access.Grant) -> dict[str, Any]:
    return {
        "type": "allow",
        "resource": {
            "type": grant.resource.lower(),
            "name": grant.name,
            "patternType": {"LITERAL": "literal", "PREFIXED": "prefix"}[grant.pattern],
        },
        "operations": [grant.operation.capitalize()],
    }


def kafka_users() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {"name": principal, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER, **PART_OF}},
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {"type": "simple", "acls": [acl(g) for g in kafka_access.grants(principal)]},
            },
        }
        for principal in kafka_access.PRINCIPALS
    ]


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def schema_statements() -> list[str]:
    """What the local stack's postgres_setup does once per database, for CloudNativePG to run after initdb: each
    service's schema owned by its role (created here without login; the managed role below gives it its login and
    password), the `auth` schema the services may only read and the owner administers, nothing for PUBLIC."""
    statements = postgres_setup.private_database(DATABASE)
    for service in SERVICES:
        statements += [f'CREATE ROLE "{service}" NOLOGIN', *postgres_setup.service_schema(service, DATABASE)]
    statements += _sql_statements(auth.SCHEMA_FILE.read_text())
    for service in SERVICES:
        statements += postgres_setup.auth_reader(service)
    # The database's owner (CloudNativePG's app user) administers the keys (`oms keys`): issue, revoke, list.
    statements += [
        f"GRANT USAGE ON SCHEMA auth TO {DATABASE}",
        f"GRANT SELECT, INSERT, UPDATE ON auth.api_keys TO {DATABASE}",
    ]
    return statements


def _sql_statements(script: str) -> list[str]:
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [" ".join(statement.split()) for statement in code.split(";") if statement.strip()]


def database_cluster() -> dict[str, Any]:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": DATABASE_CLUSTER, "labels": dict(PART_OF)},
        "spec": {
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:15",
            "primaryUpdateStrategy": "unsupervised",
            "storage": {"size": "20Gi"},
            "postgresql": {
                "parameters": {"max_connections": "400"},
                # Sessions over TLS only (the operator's own use the local socket and certificates): before the
                # operator's catch-all `host` rule, which would take plaintext too.
                "pg_hba": ["hostnossl all all all reject"],
            },
            "affinity": {"enablePodAntiAffinity": True, "topologyKey": "kubernetes.io/hostname"},
            "bootstrap": {
                "initdb": {"database": DATABASE, "owner": DATABASE, "postInitApplicationSQL": schema_statements()}
            },
            "managed": {
                "roles": [
                    {
                        "name": service,
                        "ensure": "present",
                        "comment": f"the {service} service: owns schema {service}, reads auth.api_keys",
                        "login": True,
                        "superuser": False,
                        "createdb": False,
                        "createrole": False,
                        "replication": False,
                        "bypassrls": False,
                        "inherit": True,
                        "passwordSecret": {"name": db_secret(service)},
                    }
                    for service in SERVICES
                ]
            },
        },
    }


# --- the services ----------------------------------------------------------------------------------------------


def secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def database_env(service: str) -> list[dict[str, Any]]:
    return [
        {"name": "OMS_PG_HOST", "value": f"{DATABASE_CLUSTER}-rw"},
        {"name": "OMS_PG_PORT", "value": "5432"},
        {"name": "OMS_PG_DATABASE", "value": DATABASE},
        {"name": "OMS_PG_CA_FILE", "value": DATABASE_CA.file},
        secret_env("OMS_DB_PASSWORD", db_secret(service), "password"),
    ]


def service_env(service: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "OMS_ENVIRONMENT", "value": "production"},
        {"name": "OMS_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "OMS_HTTP_HOST", "value": "0.0.0.0"},  # noqa: S104 - the pod's address, reached through its Service
        {"name": "OMS_HTTP_PORT", "value": str(HTTP_BASE[service])},
        {"name": "OMS_KAFKA_BOOTSTRAP", "value": KAFKA_BOOTSTRAP},
        {"name": "OMS_KAFKA_SCRAM_MECHANISM", "value": "SCRAM-SHA-512"},
        {"name": "OMS_KAFKA_CA_FILE", "value": KAFKA_CA.file},
        secret_env("OMS_KAFKA_PASSWORD", kafka_secret(service), "password"),
        *database_env(service),
    ]
    if service == "capture":
        env.append(secret_env("OMS_SHOPIFY_SHOP_SECRETS", "oms-capture-shopify", "shop-secrets"))
    if service == "notifications":
        env.append(secret_env("OMS_WEBHOOK_SECRET", "oms-notifications-webhooks", "signing-secret"))
        env.append(secret_env("OMS_WEBHOOKS", "oms-notifications-webhooks", "endpoints", optional=True))
        # The mail relay's login, when it asks for one (AUTH after STARTTLS: the ConfigMap oms-notifications-mail).
        env.append(secret_env("OMS_SMTP_USERNAME", "oms-notifications-smtp", "username", optional=True))
        env.append(secret_env("OMS_SMTP_PASSWORD", "oms-notifications-smtp", "password", optional=True))
    return env


CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


# Memory a service's pod asks for and may use. KPIs keep what every order of the gauges' window (a day by default)
# adds to their tallies in memory, about 0.6 KiB an order: 411 MiB resident at 572,500 orders on the local stack, the
# service's own ~80 MiB included (docs/benchmarks/findings.md, round 35; 2.5 KiB an order while they kept the facts).
# Under the others' 512 MiB a day of about 8 orders a second would have it killed and restarted over and over (each
# start reads the whole window again). 2 GiB holds about 3.3 million orders, a day of 30 orders a second with room;
# above that, raise it or shorten the window (docs/kpis.md).
MEMORY = {"kpis": {"requests": "1Gi", "limits": "2Gi"}}
DEFAULT_MEMORY = {"requests": "256Mi", "limits": "512Mi"}


def deployment(service: str) -> dict[str, Any]:
    port = HTTP_BASE[service]
    memory = MEMORY.get(service, DEFAULT_MEMORY)
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    container: dict[str, Any] = {
        "name": service,
        "image": IMAGE,
        "args": [service],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": service_env(service),
        # Ready once its pool, consumer and relay run; alive while its event loop answers.
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
        "resources": {
            "requests": {"cpu": "200m", "memory": memory["requests"]},
            "limits": {"memory": memory["limits"]},
        },
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [TMP_MOUNT, KAFKA_CA.as_mount(), DATABASE_CA.as_mount()],
    }
    if service == "notifications":
        container["envFrom"] = [{"configMapRef": {"name": "oms-notifications-mail"}}]
    migrate = {
        "name": "migrate",
        "image": IMAGE,
        "command": ["python", "-m", "deploy.kubernetes.migrate", service],
        "env": database_env(service),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [TMP_MOUNT, DATABASE_CA.as_mount()],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "selector": {"matchLabels": selector(service)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(service)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": IMAGE_USER,
                        "runAsGroup": IMAGE_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [migrate],
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                        KAFKA_CA.as_volume(),
                        DATABASE_CA.as_volume(),
                    ],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector(service)},
                        }
                    ],
                },
            },
        },
    }


def service_object(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "selector": selector(service),
            "ports": [{"name": "http", "port": HTTP_BASE[service], "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(service)}},
    }


def max_replicas(service: str) -> int:
    """More consumers in a group than partitions would idle: the widest topic the service reads bounds it."""
    return max((t.partitions for t in inputs(service)), default=2)


def autoscaler(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
            "minReplicas": 2,
            "maxReplicas": max_replicas(service),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            # A rebalance pauses the whole group: add at most one instance a minute, remove slowly.
            "behavior": {
                "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                },
            },
        },
    }


def service_monitor(service: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "selector": {"matchLabels": selector(service)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
        },
    }


def _port(number: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"port": number, "protocol": protocol}


DNS_EGRESS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [_port(53, "UDP"), _port(53, "TCP")],
}
KAFKA_EGRESS = {
    "to": [{"podSelector": {"matchLabels": {"strimzi.io/cluster": KAFKA_CLUSTER, "strimzi.io/broker-role": "true"}}}],
    "ports": [_port(KAFKA_PORT)],
}
DATABASE_EGRESS = {
    "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": DATABASE_CLUSTER}}}],
    "ports": [_port(5432)],
}
# Outside the cluster: the SMTP relay and the webhook targets (an overlay narrows the range to theirs).
OUTSIDE_EGRESS = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [_port(SMTP_PORT), _port(WEBHOOK_PORT)]}


def network_policy(service: str) -> dict[str, Any]:
    """In: Prometheus to the HTTP port (and anyone to capture's, the channels' API). Out: DNS, Kafka's brokers, the
    database, and for notifications the SMTP relay and the webhook targets; nothing else."""
    scraper = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}
    http = [_port(HTTP_BASE[service])]
    ingress = [{"ports": http}] if service == "capture" else [{"from": [scraper], "ports": http}]
    egress = [DNS_EGRESS, KAFKA_EGRESS, DATABASE_EGRESS]
    if service == "notifications":
        egress.append(OUTSIDE_EGRESS)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": service, "labels": labels(service)},
        "spec": {
            "podSelector": {"matchLabels": selector(service)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def services() -> list[dict[str, Any]]:
    return [
        make(service)
        for service in SERVICES
        for make in (deployment, service_object, disruption_budget, autoscaler, service_monitor, network_policy)
    ]


# --- the files -------------------------------------------------------------------------------------------------


def render(objects: Iterable[dict[str, Any]]) -> str:
    documents = [yaml.safe_dump(o, sort_keys=False, width=120) for o in objects]
    return HEADER + "---\n" + "---\n".join(documents)


def files() -> dict[str, str]:
    return {
        "topics.yaml": render(kafka_topics()),
        "users.yaml": render(kafka_users()),
        "database.yaml": render([database_cluster()]),
        "services.yaml": render(services()),
    }


def stale(folder: Path = GENERATED) -> list[str]:
    """The generated files whose committed text differs from what the registries give now."""
    return sorted(
        name for name, text in files().items() if not (folder / name).exists() or (folder / name).read_text() != text
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed files are not current")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        if outdated:
            sys.exit(f"out of date in {GENERATED}: {', '.join(outdated)} (run `make k8s-manifests`)")
        return
    GENERATED.mkdir(parents=True, exist_ok=True)
    for name, text in files().items():
        (GENERATED / name).write_text(text)
        print(f"wrote {GENERATED / name}")


if __name__ == "__main__":
    main()
