-- Outpost server schema 6: document revisions pushed by workstations. Each is its base's bytes
-- plus an incremental update. The one whose base was the head when it arrived became the head
-- (branch 'main'); one that arrived on an older base is kept as a conflict branch, never dropped.
CREATE TABLE document_revisions (
  document_id TEXT NOT NULL REFERENCES documents(id),
  sha256 TEXT NOT NULL,
  base_sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  branch TEXT NOT NULL CHECK (branch IN ('main', 'conflict')),
  cause TEXT NOT NULL,
  op_id TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL,
  pushed_at BIGINT NOT NULL,
  PRIMARY KEY (document_id, sha256)
);
CREATE INDEX document_revisions_base ON document_revisions(document_id, base_sha256);
