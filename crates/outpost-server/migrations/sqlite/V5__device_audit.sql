-- Outpost server schema 5: each device's uploaded audit chain, and the continuity problems found.
CREATE TABLE device_audit (
  device_id TEXT NOT NULL REFERENCES devices(id),
  seq INTEGER NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  entry TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE TABLE device_audit_problems (
  device_id TEXT NOT NULL REFERENCES devices(id),
  seq INTEGER NOT NULL,
  problem TEXT NOT NULL,
  detected_at INTEGER NOT NULL
);
CREATE INDEX device_audit_problems_device ON device_audit_problems(device_id, seq);
