-- Outpost server schema 8: a device whose refresh answer was lost on the way can present the same
-- refresh token again. Each exchanged refresh token names the session it was exchanged for, and
-- an access token notes its first use, so the server can tell "never arrived" (that session was
-- never used: it is ended and a new one issued) from "presented twice" (the whole login ends).
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;
ALTER TABLE refresh_tokens ADD COLUMN replaced_by_access TEXT;
ALTER TABLE access_tokens ADD COLUMN used BOOLEAN NOT NULL DEFAULT FALSE;
