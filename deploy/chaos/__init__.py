"""`make chaos`: the whole pipeline on the real stack, every service with two instances, driven with orders while
faults drawn from a seed are injected; then everything is healed, left to settle, and checked.

- fleet.py: the service instances (two of each) and the simulated warehouses and carriers;
- load.py: the orders, cancellations, receipts, Shopify webhooks and poison records a run sends;
- faults.py: each kind of fault as a small function, and the seeded plan of which, where and when;
- settle.py: the healer (everything up again) and the wait for quiescence;
- evidence.py: what the databases, topics and the mailbox hold afterwards;
- invariants.py: the checks, pure functions over that evidence;
- report.py: the table and the JSON report; run.py: one run from start to verdict.
"""
