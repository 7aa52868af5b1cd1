"""The monitor (issue 10, in progress): its event store of scored events, late labels and
trigger firings (`agogosml.monitor.store`), and drift detection against a training run's
reference profile (`agogosml.monitor.drift`). The service that runs them is still to come."""
