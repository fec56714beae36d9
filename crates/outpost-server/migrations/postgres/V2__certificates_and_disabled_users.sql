-- Outpost server schema 2: signer certificates the organisation's CA issued, and disabled users.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
CREATE TABLE certificates (
  serial TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL REFERENCES devices(id),
  subject TEXT NOT NULL,
  der BYTEA NOT NULL,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  issued_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX certificates_user ON certificates(user_id);
CREATE INDEX certificates_device ON certificates(device_id);
