"""Privacy (issue 11): a per-field PII policy engine the input reader applies to each record.

- `policy`: the policy, from YAML (drop, keep, redact, mask, pseudonymize, encrypt, scan).
- `engine`: `PolicyEngine(policy, keyring).apply(record)`; the `Analyzer` protocol for scan.
- `recognizers`: validated structured recognizers (email, phone, IBAN, card, US SSN, NL BSN).
- `presidio`: free text through Presidio and spaCy (names, places), when a policy asks for NER;
  `entities` maps Presidio's entity names to ours.
- `actions`: mask, HMAC pseudonyms, AES-256-GCM tokens and their decryption.
- `keys`: the `Keyring` (pseudonym key, encryption keys by id, `destroy` for crypto-shredding).
- `lineage`: which training runs used a data subject's records (a separate part of issue 11).
"""
