"""`oms`: the operator's and developer's command for the local pipeline (see `oms --help`)."""
