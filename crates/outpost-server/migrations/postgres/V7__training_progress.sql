-- Outpost server schema 7: each trainee's tutorial progress, per device, as the newest record
-- pushed (ordered by the record's own sequence, never by a clock). Only progress: the tutorial's
-- documents, annotations and signatures never reach the server.
CREATE TABLE training_progress (
  user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL REFERENCES devices(id),
  sequence BIGINT NOT NULL,
  progress TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
