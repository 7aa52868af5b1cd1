#!/bin/sh
# The Spark image's entrypoint (the Dockerfile's `spark` target).
#   driver ...    what spark-submit --master k8s://... --deploy-mode cluster runs in the
#                 driver pod: spark-submit again, in client mode, bound to the pod's address
#   executor      what the driver runs in each executor pod: Spark's Kubernetes executor
#                 backend, configured by the SPARK_* variables the driver sets on the pod
#   anything else the job itself in local mode (python -m agogosml.engines.spark ARGS)
# This is the contract of Spark's own Kubernetes image entrypoint, for a Spark that comes
# from the pyspark wheel (SPARK_HOME is its package folder).
set -eu

case "${1:-}" in
  driver)
    shift
    exec "$SPARK_HOME/bin/spark-submit" --deploy-mode client \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
      "$@"
    ;;
  executor)
    # The driver passes the executors' JVM options as SPARK_JAVA_OPT_0, _1, ... in order.
    options=$(env | grep '^SPARK_JAVA_OPT_' | sort -t_ -k4 -n | sed 's/^[^=]*=//')
    # Each option is one word (Spark escapes spaces in them): split on new lines only.
    old_ifs=$IFS
    IFS='
'
    # shellcheck disable=SC2086
    set -- $options
    IFS=$old_ifs
    exec java "-Xms${SPARK_EXECUTOR_MEMORY}" "-Xmx${SPARK_EXECUTOR_MEMORY}" "$@" \
      -cp "$SPARK_HOME/jars/*:${SPARK_CLASSPATH:-}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}"
    ;;
  *)
    exec python -m agogosml.engines.spark "$@"
    ;;
esac
