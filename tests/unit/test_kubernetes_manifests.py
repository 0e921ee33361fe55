"""The Kubernetes manifests, checked offline: the production overlay rendered by kustomize, every object valid
against the Kubernetes API's schemas and the Strimzi, CloudNativePG and Prometheus Operator CRDs (pinned, fetched
from the package registries by deploy/kubernetes/tools.py), the topics, users and ACLs the registry's, and each
service deployed as the local stack runs it: its own credentials from Secrets, probes on its real endpoints, no
root, reaching only what it must."""

from __future__ import annotations

import copy
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deploy.kubernetes import generate, tools
from deploy.kubernetes import validate as manifests
from deploy.local.stack import certificates
from services.notifications.settings import NotificationSettings
from shared.backbone import db, kafka_access
from shared.backbone.ports import HTTP_BASE
from shared.backbone.settings import CommonSettings
from shared.contracts.topics import SERVICES, TOPICS

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def fetched() -> tools.Tools:
    return tools.ensure()


@pytest.fixture(scope="module")
def rendered(fetched: tools.Tools) -> list[Obj]:
    return manifests.render(fetched.kustomize)


@pytest.fixture(scope="module")
def schemas(fetched: tools.Tools) -> manifests.Schemas:
    return manifests.schemas_of(fetched)


def of_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container(deployment: Obj) -> Obj:
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    return main  # type: ignore[no-any-return]


def env_of(deployment: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container(deployment)["env"]}


# --- the schemas -----------------------------------------------------------------------------------------------


def test_every_rendered_object_is_valid_against_its_api_schema(rendered: list[Obj], schemas: manifests.Schemas) -> None:
    report = manifests.check(rendered, schemas)
    print(report.summary())
    assert [str(p) for p in report.problems] == []
    assert report.checked["Deployment"] == len(SERVICES)
    assert report.checked["KafkaTopic"] == len(TOPICS)
    for kind in ("Kafka", "KafkaNodePool", "KafkaUser", "Cluster", "ServiceMonitor", "NetworkPolicy"):
        assert report.checked[kind] > 0, kind


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[Obj], None]:
    def mutate(obj: Obj) -> None:
        target: Any = obj
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


@pytest.mark.parametrize(
    ("kind", "mutate", "where"),
    [
        ("Deployment", _set(("spec", "replicas"), "two"), "/spec/replicas"),
        (
            "Deployment",
            _set(("spec", "template", "spec", "containers", 0, "imagePullPolcy"), "Always"),
            "/containers/0",
        ),
        ("KafkaTopic", _set(("spec", "partitions"), "six"), "/spec/partitions"),
        ("KafkaUser", _set(("spec", "authentication", "type"), "scram-sha-256"), "/spec/authentication/type"),
        ("KafkaUser", _set(("spec", "authorization", "acl"), []), "/spec/authorization"),
        ("Kafka", _set(("spec", "kafka", "listeners", 0, "port"), "9092"), "/spec/kafka/listeners/0/port"),
        ("Cluster", _set(("spec", "instances"), "3"), "/spec/instances"),
        ("ServiceMonitor", _set(("metadata", "labels", "team"), 7), "/metadata/labels/team"),
        ("HorizontalPodAutoscaler", _set(("apiVersion",), "autoscaling/v9"), "no schema"),
    ],
    ids=[
        "wrong type in a Deployment",
        "misspelt field in a Deployment",
        "wrong type in a KafkaTopic",
        "mechanism Strimzi lacks",
        "misspelt field in a KafkaUser",
        "wrong type in the Kafka cluster",
        "wrong type in the database Cluster",
        "wrong type in a CRD's metadata",
        "unknown API version",
    ],
)
def test_a_broken_manifest_is_refused_with_where_it_is_broken(
    rendered: list[Obj], schemas: manifests.Schemas, kind: str, mutate: Callable[[Obj], None], where: str
) -> None:
    # Given a valid object of the rendered overlay
    obj = copy.deepcopy(next(o for o in rendered if o["kind"] == kind))
    assert schemas.problems(obj) == []
    # When one field of it is broken
    mutate(obj)
    # Then the validator refuses it, naming the place
    problems = [str(p) for p in schemas.problems(obj)]
    assert problems
    assert any(where in p for p in problems), problems


def test_the_committed_generated_manifests_are_what_the_registries_give_now() -> None:
    assert generate.stale() == [], "run `make k8s-manifests`"


# --- Kafka -----------------------------------------------------------------------------------------------------


def test_every_registered_topic_is_a_kafka_topic_with_its_partitions_replicated_three_ways(rendered: list[Obj]) -> None:
    topics = of_kind(rendered, "KafkaTopic")
    assert {name: t["spec"]["partitions"] for name, t in topics.items()} == {t.name: t.partitions for t in TOPICS}
    for topic in topics.values():
        assert topic["spec"]["topicName"] == topic["metadata"]["name"]
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "oms-kafka"


def test_every_principal_is_a_scram_user_allowed_exactly_its_registry_grants(rendered: list[Obj]) -> None:
    users = of_kind(rendered, "KafkaUser")
    assert set(users) == set(kafka_access.PRINCIPALS)
    in_manifests = {
        (
            name,
            acl["resource"]["type"].upper(),
            {"literal": "LITERAL", "prefix": "PREFIXED"}[acl["resource"]["patternType"]],
            acl["resource"]["name"],
            operation.upper(),
        )
        for name, user in users.items()
        for acl in user["spec"]["authorization"]["acls"]
        for operation in acl["operations"]
    }
    assert in_manifests == {
        (g.principal, g.resource, g.pattern, g.name, g.operation) for g in kafka_access.all_grants()
    }
    assert all(u["spec"]["authentication"]["type"] == "scram-sha-512" for u in users.values())
    assert all(a["type"] == "allow" for u in users.values() for a in u["spec"]["authorization"]["acls"])


def test_the_kafka_cluster_is_three_kraft_nodes_replicating_three_ways_behind_scram(rendered: list[Obj]) -> None:
    (kafka,) = of_kind(rendered, "Kafka").values()
    (pool,) = of_kind(rendered, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert config["auto.create.topics.enable"] is False
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["authentication"]["type"] == "scram-sha-512"
    assert f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}" == generate.KAFKA_BOOTSTRAP


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def test_the_database_has_one_unprivileged_login_role_per_service_with_its_password_from_a_secret(
    rendered: list[Obj],
) -> None:
    (cluster,) = of_kind(rendered, "Cluster").values()
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == set(SERVICES)
    for service, role in roles.items():
        assert role["login"] is True
        assert not any(role[power] for power in ("superuser", "createdb", "createrole", "replication", "bypassrls"))
        assert role["passwordSecret"]["name"] == generate.db_secret(service)
    setup = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    for service in SERVICES:
        assert f'CREATE SCHEMA IF NOT EXISTS "{service}" AUTHORIZATION "{service}"' in setup
        assert f'GRANT SELECT ON auth.api_keys TO "{service}"' in setup
    grants = [s for s in setup if s.startswith("GRANT")]
    assert not any("ALL" in s or "INSERT" in s for s in grants if any(f'"{name}"' in s for name in SERVICES))
    assert "GRANT SELECT, INSERT, UPDATE ON auth.api_keys TO oms" in setup  # the key administrator


# --- the services ----------------------------------------------------------------------------------------------


def test_each_service_runs_as_itself_with_its_credentials_from_secret_objects(rendered: list[Obj]) -> None:
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == set(SERVICES)
    for service, deployment in deployments.items():
        env = env_of(deployment)
        assert container(deployment)["args"] == [service]
        assert env["OMS_ENVIRONMENT"]["value"] == "production"
        assert env["OMS_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": service, "key": "password"}
        assert env["OMS_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": generate.db_secret(service),
            "key": "password",
        }
        secret_like = [n for n in env if any(w in n for w in ("PASSWORD", "SECRET"))]
        assert all("value" not in env[n] for n in secret_like), secret_like
    assert "secretKeyRef" in env_of(deployments["capture"])["OMS_SHOPIFY_SHOP_SECRETS"]["valueFrom"]
    assert "secretKeyRef" in env_of(deployments["notifications"])["OMS_WEBHOOK_SECRET"]["valueFrom"]
    assert of_kind(rendered, "Secret") == {}  # no secret value is committed


def test_each_service_is_probed_on_its_real_endpoints_and_runs_unprivileged_on_a_read_only_root(
    rendered: list[Obj],
) -> None:
    for service, deployment in of_kind(rendered, "Deployment").items():
        main = container(deployment)
        (port,) = main["ports"]
        assert port == {"name": "http", "containerPort": HTTP_BASE[service], "protocol": "TCP"}
        assert env_of(deployment)["OMS_HTTP_PORT"]["value"] == str(HTTP_BASE[service])
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["resources"]["requests"]["cpu"]
        assert main["resources"]["limits"]["memory"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for each in (main, *pod["initContainers"]):
            assert each["securityContext"]["readOnlyRootFilesystem"] is True
            assert each["securityContext"]["allowPrivilegeEscalation"] is False
        (migrate,) = pod["initContainers"]
        assert migrate["command"] == ["python", "-m", "deploy.kubernetes.migrate", service]


def test_the_kpis_pod_may_hold_a_day_of_thirty_orders_a_second_in_its_window(rendered: list[Obj]) -> None:
    """KPIs keep what every order of the gauges' window (a day) adds to their tallies in memory, about 0.6 KiB an
    order as measured (411 MiB resident at 572,500 orders, a service's own ~80 MiB aside): under the 512 MiB the
    other services get, a day of about 8 orders a second would have it killed at its limit, and each restart reads
    the whole window again."""
    units = {"Mi": 2**20, "Gi": 2**30}

    def memory(service: str, kind: str) -> int:
        text = container(of_kind(rendered, "Deployment")[service])["resources"][kind]["memory"]
        return int(text[:-2]) * units[text[-2:]]

    a_day = 30 * 86_400
    assert memory("kpis", "limits") >= 80 * 2**20 + a_day * 615
    assert memory("kpis", "requests") > memory("capture", "requests")


def test_each_service_has_a_disruption_budget_an_autoscaler_and_a_scrape(rendered: list[Obj]) -> None:
    for service in SERVICES:
        budget = of_kind(rendered, "PodDisruptionBudget")[service]
        scaler = of_kind(rendered, "HorizontalPodAutoscaler")[service]
        monitor = of_kind(rendered, "ServiceMonitor")[service]
        labels = of_kind(rendered, "Deployment")[service]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert scaler["spec"]["scaleTargetRef"]["name"] == service
        assert 2 <= scaler["spec"]["minReplicas"] <= scaler["spec"]["maxReplicas"] <= 6  # no idle consumers
        assert scaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= of_kind(rendered, "Service")[service]["metadata"]["labels"].items()
        )


def _egress_peers(policy: Obj) -> list[tuple[str, frozenset[int]]]:
    found = []
    for rule in policy["spec"]["egress"]:
        ports = frozenset(p["port"] for p in rule["ports"])
        for peer in rule["to"]:
            if "ipBlock" in peer:
                found.append(("outside", ports))
            elif "namespaceSelector" in peer:
                found.append(("dns", ports))
            elif "strimzi.io/cluster" in peer["podSelector"]["matchLabels"]:
                found.append(("kafka", ports))
            elif "cnpg.io/cluster" in peer["podSelector"]["matchLabels"]:
                found.append(("database", ports))
            else:
                found.append((str(peer), ports))
    return found


def test_each_service_reaches_only_dns_kafka_its_database_and_notifications_also_mail_and_webhooks(
    rendered: list[Obj],
) -> None:
    (kafka,) = of_kind(rendered, "Kafka").values()
    (cluster,) = of_kind(rendered, "Cluster").values()
    for service, policy in of_kind(rendered, "NetworkPolicy").items():
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policy["spec"]["podSelector"]["matchLabels"] == generate.selector(service)
        listener_port = kafka["spec"]["kafka"]["listeners"][0]["port"]
        expected = [("dns", frozenset({53})), ("kafka", frozenset({listener_port})), ("database", frozenset({5432}))]
        if service == "notifications":
            expected.append(("outside", frozenset({generate.SMTP_PORT, generate.WEBHOOK_PORT})))
        assert _egress_peers(policy) == expected, service
        kafka_peer, database_peer = (
            rule["to"][0]["podSelector"]["matchLabels"] for rule in policy["spec"]["egress"][1:3]
        )
        assert kafka_peer["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert database_peer["cnpg.io/cluster"] == cluster["metadata"]["name"]
        (ingress,) = policy["spec"]["ingress"]
        assert ingress["ports"] == [{"port": HTTP_BASE[service], "protocol": "TCP"}]
        # Only capture's API is open to callers; the other services' HTTP only to Prometheus.
        assert ("from" not in ingress) == (service == "capture")
    assert set(of_kind(rendered, "NetworkPolicy")) == set(SERVICES)


def mounted_ca(deployment: Obj, path: str, of: Obj | None = None) -> str:
    """The secret whose CA certificate (and nothing else of it) the container (or `of`) has at `path`."""
    folder, _, file = path.rpartition("/")
    (mount,) = [m for m in (of or container(deployment))["volumeMounts"] if m["mountPath"] == folder]
    assert mount["readOnly"] is True
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": file}]
    return str(volume["secret"]["secretName"])


def test_each_service_reads_its_deployment_environment_and_speaks_the_listeners_sasl_mechanism_over_tls(
    rendered: list[Obj], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the environment a Deployment gives its service (secrets stand in for what the operators generate)
    (kafka,) = of_kind(rendered, "Kafka").values()
    (cluster,) = of_kind(rendered, "Cluster").values()
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert generate.KAFKA_BOOTSTRAP.endswith(f":{listener['port']}")
    # ... and no session without TLS: the first rule the operator's catch-all comes after
    assert cluster["spec"]["postgresql"]["pg_hba"] == ["hostnossl all all all reject"]
    ca_file = certificates.Authority.new("an operator's CA").save(tmp_path / "ca.pem")  # as the operators' mounted
    for service, deployment in of_kind(rendered, "Deployment").items():
        env = env_of(deployment)
        for name, variable in env.items():
            monkeypatch.setenv(name, variable.get("value", f"generated-{name.lower()}"))
        # the CA certificates come from the operators' secrets (Strimzi's cluster CA, CloudNativePG's CA)
        kafka_ca, database_ca = f"{kafka['metadata']['name']}-cluster-ca-cert", f"{cluster['metadata']['name']}-ca"
        assert mounted_ca(deployment, env["OMS_KAFKA_CA_FILE"]["value"]) == kafka_ca
        assert mounted_ca(deployment, env["OMS_PG_CA_FILE"]["value"]) == database_ca
        (migrate,) = deployment["spec"]["template"]["spec"]["initContainers"]
        migrate_env = {e["name"]: e["value"] for e in migrate["env"] if "value" in e}
        assert mounted_ca(deployment, migrate_env["OMS_PG_CA_FILE"], of=migrate) == database_ca
        monkeypatch.setenv("OMS_KAFKA_CA_FILE", str(ca_file))
        monkeypatch.setenv("OMS_PG_CA_FILE", str(ca_file))
        # When the service reads its settings (in production: no plaintext off its host)
        settings = CommonSettings(service=service)
        # Then it reaches the cluster's bootstrap and database as its own principal with the listener's mechanism,
        # over TLS
        options = kafka_access.of_service(settings).client_options()
        assert options["sasl_mechanism"] == listener["authentication"]["type"].upper()
        assert options["bootstrap_servers"] == generate.KAFKA_BOOTSTRAP
        assert options["sasl_plain_username"] == service
        assert options["security_protocol"] == "SASL_SSL"
        assert isinstance(db.session_tls(settings), ssl.SSLContext)
        assert settings.db_dsn == f"postgresql://{service}@oms-db-rw:5432/oms"
        assert settings.http_port == HTTP_BASE[service]


def test_notifications_start_in_production_with_the_mail_relay_of_their_config_map_over_starttls(
    rendered: list[Obj], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given notifications' environment: its Deployment's, and the ConfigMap it reads the relay from
    deployment = of_kind(rendered, "Deployment")["notifications"]
    (source,) = container(deployment)["envFrom"]
    config = of_kind(rendered, "ConfigMap")
    (mail,) = [c for name, c in config.items() if name.startswith(source["configMapRef"]["name"])]
    ca_file = certificates.Authority.new("an operator's CA").save(tmp_path / "ca.pem")
    for name, variable in env_of(deployment).items():
        monkeypatch.setenv(name, variable.get("value", f"generated-{name.lower()}"))
    for name, value in mail["data"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OMS_WEBHOOKS", "[]")  # the Secret's endpoints (JSON, optional): none here
    monkeypatch.setenv("OMS_KAFKA_CA_FILE", str(ca_file))
    monkeypatch.setenv("OMS_PG_CA_FILE", str(ca_file))
    # When they read their settings (production: no relay off the host in plaintext)
    settings = NotificationSettings()
    # Then they speak STARTTLS to the relay, checking it against the system's CAs, and log in with the Secret's user
    assert settings.smtp_host == "smtp.example.org" and settings.smtp_starttls
    assert settings.smtp_tls() is not None
    assert settings.smtp_login() == ("generated-oms_smtp_username", "generated-oms_smtp_password")
