"""The contracts between the services and with the outside: the envelope, the versioned payload models, the
topic registry (each topic's writer and readers) and what is generated from it (AsyncAPI, the topology)."""
