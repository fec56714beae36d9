-- Outpost server schema 3: positions in the sync change order. One counter row, bumped inside every
-- transaction that changes what a workstation must pull (its row lock makes commit order equal
-- position order, so a reader's cursor never passes a change that is still uncommitted).
CREATE TABLE sync_counter (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL
);
INSERT INTO sync_counter (id, seq) VALUES (1, CASE WHEN EXISTS (SELECT 1 FROM documents) THEN 1 ELSE 0 END);
ALTER TABLE documents ADD COLUMN head_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assignments ADD COLUMN revoked_seq INTEGER;
-- What existed before sync positions counts as change 1.
UPDATE documents SET head_seq = 1;
UPDATE assignments SET created_seq = 1;
UPDATE assignments SET revoked_seq = 1 WHERE revoked_at IS NOT NULL;
CREATE INDEX assignments_user_seq ON assignments(user_id, created_seq);
CREATE INDEX assignments_unit_seq ON assignments(unit_id, created_seq);
