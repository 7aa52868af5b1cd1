"""What the monitor's event store and the lineage index share: a SQL database on SQLite
(embedded) or PostgreSQL (a server), opened through one connection that serialises its
threads, and brought to its schema by numbered migrations (`schema`, `database`, and a
connection per backend in `sqlite` and `postgres`)."""
