"""The model loop: train → test gate → register as `challenger` → promote → rollback.

Every trigger (a person, a schedule, a drift monitor, a GDPR erasure) enters through
`agogosml.modelloop.retrain.retrain`; the CLI and the HTTP router are thin shells over it.
"""
