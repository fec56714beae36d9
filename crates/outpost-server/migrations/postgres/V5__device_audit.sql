-- Outpost server schema 5: each device's uploaded audit chain, and the continuity problems found.
CREATE TABLE device_audit (
  device_id TEXT NOT NULL REFERENCES devices(id),
  seq BIGINT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  entry TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE TABLE device_audit_problems (
  device_id TEXT NOT NULL REFERENCES devices(id),
  seq BIGINT NOT NULL,
  problem TEXT NOT NULL,
  detected_at BIGINT NOT NULL
);
CREATE INDEX device_audit_problems_device ON device_audit_problems(device_id, seq);
