"""agogosml on Spark Structured Streaming: the trio's contract as one streaming query.

The job reads the input stream from Kafka (or Event Hubs through its Kafka endpoint: the
same `kafka_*` settings as the reader), turns each record into an event exactly as the input
reader does (JSON Schema, envelope and ids, PII policy), scores the events with the app's
own code and model, and writes scored events (keyed by id) to the output stream and dead
letters (reason in the `agogosml-reason` header) to the dead-letter stream, in the formats
the output writer and the reader write. Settings: AGOGOSML_SPARK_* (settings.py).

    agogosml spark run                    # or: python -m agogosml.engines.spark
    AGOGOSML_SPARK_CHECKPOINT_LOCATION=var/spark/checkpoint  (required)

Delivery: at least once. Every micro-batch's offsets go to the checkpoint before the batch
runs; the batch is marked done only after the Kafka sink's producer flushed (acks=all).
What a restart replays: the micro-batches whose offsets were logged and not marked done,
in practice the one that was running (Spark plans the next only after the last is done),
so at most `max_offsets_per_trigger` records (50,000 by default) per crash. Their scored
events and dead letters written before the crash are written again, under the same keys
(event ids): consumers drop the duplicates by id, as for the trio. Nothing acknowledged is
replayed and nothing unacknowledged is skipped. A query whose input offsets were deleted by
retention fails (Spark's failOnDataLoss) rather than skip records silently. A restart with
other settings (model, schema) resumes from the same offsets.

Unlike the reader, the job does not commit offsets to a consumer group (Spark keeps its own
in the checkpoint), and it pins the model version its alias named at start: a restart
follows a moved alias.

On Kubernetes, with the Spark image (the Dockerfile's `spark` target; the job and the
connector are in it, and a stateless query writes its checkpoint from the driver only, so a
volume on the driver is enough):

    env=spark.kubernetes.driverEnv.AGOGOSML_SPARK
    secret=spark.kubernetes.driver.secretKeyRef.AGOGOSML_SPARK
    pvc=spark.kubernetes.driver.volumes.persistentVolumeClaim.checkpoint
    spark-submit --master k8s://https://<api-server>:6443 --deploy-mode cluster \\
      --name agogosml-spark \\
      --conf spark.kubernetes.container.image=<registry>/agogosml-spark:<version> \\
      --conf spark.kubernetes.namespace=agogosml \\
      --conf spark.kubernetes.authenticate.driver.serviceAccountName=agogosml-spark \\
      --conf spark.executor.instances=3 --conf spark.executor.cores=2 \\
      --conf spark.authenticate=true --conf spark.network.crypto.enabled=true \\
      --conf ${env}_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \\
      --conf ${env}_MODEL_URI=models:/demo@champion \\
      --conf ${env}_MLFLOW_TRACKING_URI=http://mlflow:5000 \\
      --conf ${env}_CHECKPOINT_LOCATION=/checkpoint/agogosml \\
      --conf ${pvc}.mount.path=/checkpoint \\
      --conf ${pvc}.options.claimName=agogosml-spark-checkpoint \\
      --conf ${secret}_KAFKA_SASL_PASSWORD=kafka:password \\
      local:///opt/venv/lib/python3.11/site-packages/agogosml/engines/spark/__main__.py

(docs/spark.md has it too, with what each part is for.)

The settings are read on the driver and reach the executors inside the pickled function
(secrets included: hence spark.authenticate and network encryption). Executors load the
model from MLflow themselves: give them the artifact store's credentials
(spark.kubernetes.executor.secretKeyRef.*). `max_offsets_per_trigger` bounds a micro-batch
and so what a crash replays; `partitions` spreads a batch over more tasks than the input
has partitions.
"""
