"""Backups to S3 (PostgreSQL logical dumps, base backups + archived WAL, Redis snapshots), their
verification and restore, and the DR drills that restore into a new place and measure RTO and RPO.

Pure core: `manifest`, `retention`, `objectives`, `report`, `scenarios`. I/O edges: `s3`, `postgres`,
`pitr`, `wal_archive`, `redis_snapshot`, `backups`, `runner`, `cli`."""
