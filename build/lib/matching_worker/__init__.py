"""The matching worker: the one adapter between the pure engine (`matching/`) and PostgreSQL, one process per
shard of trading pairs.

It rebuilds its shard's books from the database, then loops: claim pending control commands and the oldest
pending inbox entries, run them through the engines, and commit everything they changed in one transaction
per batch. Nothing is acknowledged before that commit, so a crash at any point leaves the inbox pending and a
restarted worker redoes exactly the lost batch.

Read it in the order a batch travels:

| module | what |
|---|---|
| `pairs.py` | the shard's pairs as the worker holds them (engine, units, live fills), rebuilt from the database |
| `session.py` | a batch transaction's own PostgreSQL session: the shard lock, planner settings, prepared statements |
| `claim.py` | taking control commands and inbox entries, in arrival order, locked |
| `batch.py` | what one transaction writes, gathered while the engines run |
| `execute.py` | running a claim through the engines into a batch (no database) |
| `write.py` | writing a batch with COPY, the engines' checkpoint and the results NOTIFY |
| `worker.py` | `MatchingWorker`: one whole batch, claim to commit |
| `quarantine.py` | an entry that fails on its own is set apart so the rest of the shard goes on |
| `serve.py` | `ShardServer`: the pipelined loop, NOTIFY wake-ups, signals, heartbeats, reports |
| `health_recorder.py` | the per-minute health samples the control plane decides from |
"""
