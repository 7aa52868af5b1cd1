#!/usr/bin/env bash
# Resolve Spark's Kafka connector (spark-sql-kafka-0-10) and its dependencies from Maven
# Central, once, into a cache outside the clone; the Spark job passes them as spark.jars and
# never downloads at run time. Prints the folder of jars.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$here/tools/spark/pom.xml")"
pinned="$(sed -n 's/.*"pyspark==\([^"]*\)".*/\1/p' "$here/pyproject.toml")"
if [ "$version" != "$pinned" ]; then
  echo "fetch-spark: tools/spark/pom.xml has Spark $version, pyproject.toml pins pyspark $pinned" >&2
  exit 1
fi
jars="${AGOGOSML_SPARK_JARS_DIR:-$HOME/.cache/agogosml/spark-$version/jars}"
if ! ls "$jars"/spark-sql-kafka-0-10_2.13-"$version".jar >/dev/null 2>&1; then
  command -v mvn >/dev/null || { echo "fetch-spark: Maven (mvn) is needed" >&2; exit 1; }
  command -v java >/dev/null || { echo "fetch-spark: Java 17+ is needed" >&2; exit 1; }
  echo "fetch-spark: resolving org.apache.spark:spark-sql-kafka-0-10_2.13:$version into $jars" >&2
  mvn -q -B -f "$here/tools/spark/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$jars" >&2
fi
echo "$jars"
