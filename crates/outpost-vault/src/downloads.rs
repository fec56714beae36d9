//! Documents being downloaded from the server. Their bytes are kept here part by part as they
//! arrive — encrypted like everything else in the vault — so an interrupted download resumes where
//! it stopped, even after a restart, and the transfer never holds more than one part in memory.
//! When the pull round that wanted them is applied, the parts become the document's bytes where
//! they are (`document_bytes.parts_sha256`): a downloaded document is written once.

use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

use crate::{Vault, VaultError};

impl Vault {
    /// How many bytes of the download of `sha256` are held (from the first byte, without holes).
    pub fn download_held(&self, sha256: &str) -> Result<u64, VaultError> {
        held(&self.conn, sha256)
    }

    /// Keeps `bytes` of the download of `sha256`, which must start where the held bytes end
    /// ([`VaultError::DownloadOutOfOrder`] otherwise, and nothing is written). Each part is its
    /// own small transaction: what arrived before a connection broke stays.
    pub fn keep_download_part(
        &self,
        sha256: &str,
        start: u64,
        bytes: &[u8],
    ) -> Result<(), VaultError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let written = self.conn.execute(
            "INSERT INTO download_parts (sha256, start_at, size, bytes)
             SELECT ?1, ?2, ?3, ?4
             WHERE (SELECT COALESCE(SUM(size), 0) FROM download_parts WHERE sha256 = ?1) = ?2
               AND NOT EXISTS (SELECT 1 FROM document_bytes WHERE parts_sha256 = ?1)",
            rusqlite::params![sha256, to_sql_size(start), bytes.len() as i64, bytes],
        )?;
        if written == 0 {
            return Err(VaultError::DownloadOutOfOrder {
                sha256: sha256.to_string(),
                held: self.download_held(sha256)?,
                start,
            });
        }
        Ok(())
    }

    /// The length and SHA-256 (lower-case hex) of the held bytes of `sha256`, read one part at a
    /// time.
    pub fn download_digest(&self, sha256: &str) -> Result<(u64, String), VaultError> {
        let mut digest = Sha256::new();
        let mut length = 0u64;
        for_each_part(&self.conn, sha256, |bytes| {
            digest.update(bytes);
            length += bytes.len() as u64;
            Ok(())
        })?;
        Ok((length, hex::encode(digest.finalize())))
    }

    /// The held bytes of `sha256` in one buffer (for the PDF engine, which reads a whole file).
    pub fn download_bytes(&self, sha256: &str) -> Result<Vec<u8>, VaultError> {
        let mut all = Vec::with_capacity(usize::try_from(self.download_held(sha256)?).unwrap_or(0));
        for_each_part(&self.conn, sha256, |bytes| {
            all.extend_from_slice(bytes);
            Ok(())
        })?;
        Ok(all)
    }

    /// Drops what is held of the download of `sha256` (bytes that did not match their hash).
    pub fn discard_download(&self, sha256: &str) -> Result<(), VaultError> {
        // Parts that are a document's bytes are not a download any more.
        self.conn.execute(
            "DELETE FROM download_parts WHERE sha256 = ?1
               AND NOT EXISTS (SELECT 1 FROM document_bytes WHERE parts_sha256 = ?1)",
            [sha256],
        )?;
        Ok(())
    }
}

fn to_sql_size(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

pub(crate) fn held(conn: &rusqlite::Connection, sha256: &str) -> Result<u64, VaultError> {
    let held: Option<i64> = conn
        .query_row(
            "SELECT SUM(size) FROM download_parts WHERE sha256 = ?1",
            [sha256],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(held.and_then(|h| u64::try_from(h).ok()).unwrap_or(0))
}

/// Calls `visit` with each held part of `sha256`, first byte first, one part in memory at a time.
pub(crate) fn for_each_part(
    conn: &rusqlite::Connection,
    sha256: &str,
    mut visit: impl FnMut(&[u8]) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    let mut statement = conn
        .prepare_cached("SELECT bytes FROM download_parts WHERE sha256 = ?1 ORDER BY start_at")?;
    let mut rows = statement.query([sha256])?;
    while let Some(row) = rows.next()? {
        let bytes = row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        visit(bytes)?;
    }
    Ok(())
}
