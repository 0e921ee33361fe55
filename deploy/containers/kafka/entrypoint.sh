#!/bin/sh
# One KRaft node (broker and controller) configured from the environment, as the native stack configures its one
# (deploy/local/stack/kafka.py): SCRAM-SHA-256 and ACLs on the client listeners, the admin credential added when
# the storage is formatted. Principals and ACLs are applied afterwards by the stack's own setup code.
#   KAFKA_NODE_ID (1)            KAFKA_VOTERS (1@localhost:9093: id@host:port of every controller)
#   KAFKA_CLUSTER_ID (required)  KAFKA_ADMIN_PASSWORD (required)
#   KAFKA_INTERNAL_HOST          the name other containers reach this node by (its hostname)
#   KAFKA_EXTERNAL_ADDRESS       host:port the host reaches this node's published listener by (127.0.0.1:19092)
#   KAFKA_REPLICATION (1)        internal topics' replication factor; min.insync.replicas is one less (at least 1)
set -eu
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID}" "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
node="${KAFKA_NODE_ID:-1}"
voters="${KAFKA_VOTERS:-1@localhost:9093}"
internal="${KAFKA_INTERNAL_HOST:-$(hostname)}"
external="${KAFKA_EXTERNAL_ADDRESS:-127.0.0.1:19092}"
replication="${KAFKA_REPLICATION:-1}"
min_isr=$((replication > 1 ? replication - 1 : 1))
data=/var/lib/kafka/data
config=/var/lib/kafka/server.properties

umask 077
cat >"$config" <<PROPERTIES
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
# Clients authenticate with SCRAM-SHA-256 on both client listeners. The controller listener stays PLAINTEXT
# (KRaft cannot check SCRAM there): it is not published, and its peers, the brokers, are super users.
listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093
advertised.listeners=INTERNAL://$internal:9092,EXTERNAL://$external
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-256
listener.name.internal.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
  required username="admin" password="$KAFKA_ADMIN_PASSWORD";
listener.name.external.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
  required username="admin" password="$KAFKA_ADMIN_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:ANONYMOUS
log.dirs=$data
num.partitions=6
default.replication.factor=$replication
min.insync.replicas=$min_isr
auto.create.topics.enable=false
offsets.topic.replication.factor=$replication
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
PROPERTIES

java_run() { exec_or_run="$1"; shift
  $exec_or_run java -Xms256m -Xmx${KAFKA_HEAP:-512m} -XX:+UseG1GC -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties \
    -cp '/opt/kafka/libs/*' "$@"; }
if [ ! -f "$data/meta.properties" ]; then
  java_run "" kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" -c "$config" --ignore-formatted \
    --add-scram "SCRAM-SHA-256=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"
fi
java_run exec kafka.Kafka "$config"
