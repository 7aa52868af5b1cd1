#!/usr/bin/env bash
# Resolve Apache Kafka's broker and its dependencies from Maven Central, once, into a
# cache outside the clone. Prints the folder of jars.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/tools/kafka/pom.xml")"
libs="${AGOGOSML_KAFKA_LIBS:-$HOME/.cache/agogosml/kafka-$version/libs}"
if ! ls "$libs"/kafka_2.13-*.jar >/dev/null 2>&1; then
  command -v mvn >/dev/null || { echo "fetch-kafka: Maven (mvn) is needed" >&2; exit 1; }
  command -v java >/dev/null || { echo "fetch-kafka: Java 17+ is needed" >&2; exit 1; }
  echo "fetch-kafka: resolving org.apache.kafka:kafka_2.13:$version into $libs" >&2
  mvn -q -B -f "$here/tools/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
fi
echo "$libs"
