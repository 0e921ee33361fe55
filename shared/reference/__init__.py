"""Reference data several services keep: their copy of the catalogue and the warehouse network's
configuration. Business data, not plumbing; owned by outside parties (the catalogue system, operations)."""
