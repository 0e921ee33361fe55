"""`make bench`: the pipeline measured against what this machine's PostgreSQL and Kafka can do in the same run,
with CPU per component and py-spy profiles of the services, written to docs/benchmarks/."""
