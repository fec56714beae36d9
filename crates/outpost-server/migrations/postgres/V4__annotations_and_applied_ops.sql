-- Outpost server schema 4: annotations as workstations push them (last writer wins per
-- annotation by (logical_clock, origin); deletions are tombstones), and the record of every
-- pushed operation, so each is applied exactly once.
CREATE TABLE annotations (
  id TEXT PRIMARY KEY,
  document_id TEXT NOT NULL REFERENCES documents(id),
  page_no BIGINT NOT NULL,
  kind TEXT NOT NULL,
  author TEXT NOT NULL,
  body TEXT NOT NULL,
  revision BIGINT NOT NULL,
  logical_clock BIGINT NOT NULL,
  origin TEXT NOT NULL,
  deleted BOOLEAN NOT NULL,
  created_at_ms BIGINT NOT NULL,
  modified_at_ms BIGINT NOT NULL,
  position BIGINT NOT NULL
);
CREATE INDEX annotations_document ON annotations(document_id, position);
CREATE TABLE applied_ops (
  op_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  applied_at BIGINT NOT NULL
);
