"""Forgetting a data subject end to end (GDPR Art. 17): `process` runs the steps and records
them in the `journal`; `datasets` purges training snapshots; `models` retrains, promotes and
retires on MLflow; `audit` words the record; `router` and `agogosml gdpr forget` start it;
`wiring` builds it from AGOGOSML_GDPR_* settings."""
