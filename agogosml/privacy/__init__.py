"""Personal data: protected where it enters, traced into models, and forgotten on request.

- `policy`: the per-field policy, from YAML (drop, keep, redact, mask, pseudonymize, encrypt,
  scan); `engine`: `PolicyEngine(policy, keyring).apply(record, subject=...)`, which the input
  reader runs on every record (agogosml/services/input_reader/privacy.py).
- `recognizers`: validated structured recognizers (email, phone, IBAN, card, US SSN, NL BSN);
  `presidio`: free text through Presidio and spaCy (names, places) when a policy asks for
  NER; `entities` maps Presidio's entity names to ours.
- `actions`: mask, HMAC pseudonyms, AES-256-GCM tokens; `keys`: the `Keyring` (pseudonym key,
  period keys); `keyfile`: new keyring files.
- `subjectkeys`: one data key per subject, wrapped under a KEK, shredded on erasure;
  `sealing`: dead letters sealed under those keys.
- `lineage`: which training runs and model versions used a subject.
- `forget`: the resumable erasure (snapshots, event store, keys, retrain, promote, retire,
  lineage) and its audit record; `settings` and `cli`: `agogosml gdpr …`.
"""
