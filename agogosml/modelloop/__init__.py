"""The model loop: train → test gate → register as `challenger` → promote → rollback.

Every trigger (a person, a schedule, a drift monitor, a GDPR erasure) enters through
`agogosml.modelloop.retrain.retrain`; the CLI and the HTTP router are thin shells over it.
Training records subject lineage when an index is configured (`lineage`), and can train
SISA-style sharded models (`shards`, `ensemble`) so that an erasure refits only the shards
that held the forgotten subject.
"""
