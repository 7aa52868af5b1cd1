"""Running the whole pipeline on one machine without containers: a real single-node
Kafka broker (KRaft) on the machine's Java, MLflow on SQLite, and the three services."""
