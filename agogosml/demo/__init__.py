"""The demo: a synthetic card-transaction data set, a fraud model trained on it and
registered in MLflow, and an event producer that feeds the pipeline."""
