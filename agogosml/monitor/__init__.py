"""What the monitor (agogosml/services/monitor) knows and does: the event store of scored
events, late labels and trigger firings (`store`), ingestion of the output and feedback
topics (`ingest`, `labels`), drift against each model version's reference profile
(`drift`, `versions`, `references`), live pace and performance (`live`, `performance`),
the state that ties them (`state`), triggers that act (`triggers`) and the dashboard
(`dashboard`, reading the shapes of `view`)."""
