-- Outpost server schema 1: units, users and their second factors, devices, tokens, documents,
-- assignments and the audit log.
CREATE TABLE units (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('staff', 'supervisor', 'trainee', 'admin')),
  unit_id TEXT REFERENCES units(id),
  password_hash TEXT NOT NULL,
  totp_secret BLOB,
  last_totp_step INTEGER,
  failed_logins INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE recovery_codes (
  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  name TEXT NOT NULL,
  public_key BLOB NOT NULL,
  enrolled_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX devices_user ON devices(user_id);
CREATE TABLE access_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL REFERENCES devices(id),
  expires_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_device ON access_tokens(device_id);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  device_id TEXT NOT NULL REFERENCES devices(id),
  expires_at INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_device ON refresh_tokens(device_id);
CREATE TABLE documents (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  classification TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  registered_by TEXT NOT NULL,
  registered_at INTEGER NOT NULL
);
CREATE TABLE assignments (
  id TEXT PRIMARY KEY,
  document_id TEXT NOT NULL REFERENCES documents(id),
  user_id TEXT REFERENCES users(id),
  unit_id TEXT REFERENCES units(id),
  assigned_at INTEGER NOT NULL,
  revoked_at INTEGER,
  CHECK ((user_id IS NULL) <> (unit_id IS NULL))
);
CREATE UNIQUE INDEX assignments_active_user ON assignments(document_id, user_id)
  WHERE revoked_at IS NULL AND user_id IS NOT NULL;
CREATE UNIQUE INDEX assignments_active_unit ON assignments(document_id, unit_id)
  WHERE revoked_at IS NULL AND unit_id IS NOT NULL;
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  subject TEXT NOT NULL,
  detail TEXT NOT NULL
);
