"""The local stack's Kafka as one broker (the default) or, with OMS_KAFKA_BROKERS=3, a cluster of three KRaft nodes:
where each node listens, what every client is told to bootstrap from, and how each node is configured."""

import pytest

from deploy.local import processes
from deploy.local.settings import LocalStack
from deploy.local.stack import kafka
from shared.backbone.ports import StackPorts


def properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if "=" in line and not line.startswith((" ", "#"))]
    return dict(line.split("=", 1) for line in lines)


def test_by_default_the_stack_runs_one_broker_where_it_always_ran() -> None:
    # given no broker count set
    local = LocalStack.from_env({"OMS_PORT_OFFSET": "700", "OMS_STATE_DIR": "/tmp/oms-one"})

    # then one node, in the state directory's kafka folder, on the Kafka port, its topics and internal topics on it
    [node] = kafka.nodes(local)
    assert (node.id, node.port, node.controller_port, node.home) == (1, 19792, 19793, local.kafka_dir)
    assert local.kafka_bootstrap == "127.0.0.1:19792"
    config = properties(kafka.server_properties(local, node))
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19793"
    assert config["default.replication.factor"] == config["offsets.topic.replication.factor"] == "1"
    assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == "1"


def test_a_cluster_of_three_lists_every_broker_to_every_client_and_keeps_its_ports_inside_the_offset_window() -> None:
    # given OMS_KAFKA_BROKERS=3 on a stack shifted by 700
    local = LocalStack.from_env({"OMS_PORT_OFFSET": "700", "OMS_KAFKA_BROKERS": "3", "OMS_STATE_DIR": "/tmp/oms-3"})

    # then three nodes two ports apart (the compose stack's broker ports), each in a folder of its own
    nodes = kafka.nodes(local)
    assert [(n.id, n.port, n.controller_port) for n in nodes] == [
        (1, 19792, 19793),
        (2, 19794, 19795),
        (3, 19796, 19797),
    ]
    assert [n.home.name for n in nodes] == ["node-1", "node-2", "node-3"]
    # and the services, the simulator and the tools bootstrap from all three, so any two of them suffice
    everyone = "127.0.0.1:19792,127.0.0.1:19794,127.0.0.1:19796"
    assert local.kafka_bootstrap == everyone
    assert processes.service(local, "capture").environment()["OMS_KAFKA_BOOTSTRAP"] == everyone
    assert LocalStack.from_env(local.environment()) == local
    # and a stack 100 ports further on has none of these ports
    ports = {p for n in nodes for p in (n.port, n.controller_port)}
    shifted = LocalStack.from_env({"OMS_PORT_OFFSET": "800", "OMS_KAFKA_BROKERS": "3"})
    assert not ports & {p for n in kafka.nodes(shifted) for p in (n.port, n.controller_port)}
    assert all(0 <= port - 700 - 19092 < 10 for port in ports)


def test_each_node_of_the_cluster_is_broker_and_controller_with_every_topic_on_three_nodes_two_in_sync() -> None:
    local = LocalStack.from_env({"OMS_PORT_OFFSET": "700", "OMS_KAFKA_BROKERS": "3", "OMS_STATE_DIR": "/tmp/oms-3"})

    configs = [properties(kafka.server_properties(local, n)) for n in kafka.nodes(local)]

    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert {c["process.roles"] for c in configs} == {"broker,controller"}
    assert {c["controller.quorum.voters"] for c in configs} == {"1@127.0.0.1:19793,2@127.0.0.1:19795,3@127.0.0.1:19797"}
    assert [c["log.dirs"] for c in configs] == [f"/tmp/oms-3/kafka/node-{n}/data" for n in (1, 2, 3)]
    for config in configs:
        assert config["default.replication.factor"] == "3"
        assert config["min.insync.replicas"] == "2"
        for internal in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
            assert config[f"{internal}.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == config["share.coordinator.state.topic.min.isr"] == "2"
    assert kafka.replication(local) == 3


def test_a_broker_count_the_stack_cannot_run_is_refused_with_what_it_can() -> None:
    with pytest.raises(ValueError, match="1 Kafka broker or a cluster of 3"):
        StackPorts.from_env({"OMS_KAFKA_BROKERS": "2"})
