//! Documents being downloaded from the server. Their bytes are kept part by part as they arrive,
//! so an interrupted download resumes where it stopped, even after a restart, and the transfer
//! never holds more than one part in memory. When the pull round that wanted them is applied, the
//! parts become the document's bytes where they are (`document_bytes.parts_sha256`): a
//! downloaded document is written once.
//!
//! Where the bytes live: each download has a file of its own in the vault's `parts/` folder, and
//! each part is sealed there with AES-256-GCM (ring) under the file's random 256-bit key, with a random
//! nonce and the part's place (document hash, first byte, size) as associated data. The key, the
//! nonces and where each part starts in the file are kept only inside the encrypted database, so
//! the files are unreadable without it; deleting a file's key row (secure delete is on) makes
//! the file unreadable even before it is removed — once the key's old page has also left the
//! write-ahead log at its next checkpoint. Large bytes go to files rather than into
//! SQLCipher pages because a page-encrypted, write-ahead-logged database writes every byte twice
//! with a CBC encryption and an HMAC per 4 kB page — several times the cost of one sealed write
//! (docs/benchmarks.md, sync-scale). Parts kept by an earlier Outpost inside the database
//! (`file_offset` NULL) are still read from there.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{Vault, VaultError};

/// The AES-GCM tag that follows each sealed part in its file.
const TAG_LEN: u64 = 16;

/// A download file's AES-256-GCM key, wiped from memory when dropped.
type FileKey = Zeroizing<[u8; 32]>;

/// The folder (inside the vault's) holding the sealed download files.
const PARTS_FOLDER: &str = "parts";

/// Fresh randomness for keeping one part: the file's key and name (used when the download's file
/// is made) and the part's nonce. Drawn by the caller from its RNG, so the vault needs none of its
/// own and tests stay deterministic.
pub struct PartRandomness {
    file_key: Zeroizing<[u8; 32]>,
    file_name: [u8; 16],
    nonce: [u8; 12],
}

/// One part of a download, planned by [`Vault::plan_download_part`]: the download's file, where
/// in it the part goes, its key and nonce. Writing it needs no vault, so several downloads seal
/// and write at once.
pub struct DownloadPart {
    sha256: String,
    start: u64,
    path: PathBuf,
    file_offset: u64,
    file_key: FileKey,
    nonce: [u8; 12],
}

impl DownloadPart {
    /// Seals `bytes` (not empty; AES-256-GCM, bound to the part's place) and writes them to the
    /// download's file, which is cut where the planned part begins. Not held until
    /// [`Vault::record_download_part`] records the result. Takes the plan, so that its nonce seals
    /// one part only: a write that failed is planned again, with fresh randomness.
    pub fn write(self, bytes: &[u8]) -> Result<WrittenPart, VaultError> {
        let mut sealed = Vec::with_capacity(bytes.len() + TAG_LEN as usize);
        sealed.extend_from_slice(bytes);
        cipher(&self.sha256, &self.file_key)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(part_place(&self.sha256, self.start, bytes.len() as u64).as_bytes()),
                &mut sealed,
            )
            .map_err(|_| VaultError::PartUnreadable {
                sha256: self.sha256.clone(),
                reason: "it could not be sealed".into(),
            })?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| VaultError::io(&self.path, e))?;
        file.set_len(self.file_offset)
            .and_then(|()| file.write_all_at(&sealed, self.file_offset))
            .map_err(|e| VaultError::io(&self.path, e))?;
        Ok(WrittenPart {
            sha256: self.sha256,
            start: self.start,
            size: bytes.len() as u64,
            file_offset: self.file_offset,
            nonce: self.nonce,
        })
    }
}

/// A part [`DownloadPart::write`] wrote, to be recorded by [`Vault::record_download_part`].
pub struct WrittenPart {
    sha256: String,
    start: u64,
    size: u64,
    file_offset: u64,
    nonce: [u8; 12],
}

impl PartRandomness {
    /// Draws what keeping one part needs from `rng`.
    pub fn draw(rng: &mut dyn rand_core::CryptoRngCore) -> PartRandomness {
        let mut fresh = PartRandomness {
            file_key: Zeroizing::new([0; 32]),
            file_name: [0; 16],
            nonce: [0; 12],
        };
        rng.fill_bytes(fresh.file_key.as_mut());
        rng.fill_bytes(&mut fresh.file_name);
        rng.fill_bytes(&mut fresh.nonce);
        fresh
    }
}

impl Vault {
    /// How many bytes of the download of `sha256` are held (from the first byte, without holes).
    pub fn download_held(&self, sha256: &str) -> Result<u64, VaultError> {
        held(&self.conn, sha256)
    }

    /// Keeps `bytes` of the download of `sha256`, which must start where the held bytes end
    /// ([`VaultError::DownloadOutOfOrder`] otherwise, and nothing is written), sealed in the
    /// download's file with `fresh`'s nonce: [`Vault::plan_download_part`], [`DownloadPart::write`]
    /// and [`Vault::record_download_part`] in one call. A caller that downloads several documents
    /// at once calls those three itself, so that sealing and writing (the slow part) happen
    /// without holding the vault.
    pub fn keep_download_part(
        &self,
        sha256: &str,
        start: u64,
        bytes: &[u8],
        fresh: &PartRandomness,
    ) -> Result<(), VaultError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let part = self.plan_download_part(sha256, start, fresh)?;
        let written = part.write(bytes)?;
        self.record_download_part(&written)
    }

    /// Where and under which key the part of the download of `sha256` that starts at byte
    /// `start` is to be written (with `fresh`'s nonce; a download's first part also takes
    /// `fresh`'s file key and name). The part must start where the held bytes end
    /// ([`VaultError::DownloadOutOfOrder`] otherwise). The download's file key is committed
    /// before its file exists, so an opening of the vault meanwhile (which removes files the
    /// database does not own) never takes a file being written.
    pub fn plan_download_part(
        &self,
        sha256: &str,
        start: u64,
        fresh: &PartRandomness,
    ) -> Result<DownloadPart, VaultError> {
        self.check_next_part(sha256, start)?;
        // Not waiting for the disk: after a power cut a file without its key row is removed at
        // the next opening, and the download starts over.
        let _unsynced = UnsyncedCommits::begin(&self.conn)?;
        let (file_name, file_key) = match download_file(&self.conn, sha256)? {
            Some(found) => found,
            None => {
                let name = hex::encode(fresh.file_name);
                self.conn.execute(
                    "INSERT INTO download_files (sha256, file_name, file_key) VALUES (?1, ?2, ?3)",
                    rusqlite::params![sha256, name, fresh.file_key.as_slice()],
                )?;
                (name, fresh.file_key.clone())
            }
        };
        // The file ends where its last kept part ends: bytes after that were written for a part
        // whose row never committed, and are overwritten.
        let offset: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(file_offset + size + ?2), 0) FROM download_parts
              WHERE sha256 = ?1 AND file_offset IS NOT NULL",
            rusqlite::params![sha256, TAG_LEN as i64],
            |r| r.get(0),
        )?;
        let folder = self.parts_folder();
        crate::vault::create_private_dir(&folder)?;
        Ok(DownloadPart {
            sha256: sha256.to_string(),
            start,
            path: folder.join(file_name),
            file_offset: u64::try_from(offset).unwrap_or(0),
            file_key,
            nonce: fresh.nonce,
        })
    }

    /// Records a part [`DownloadPart::write`] wrote: from now on it is held. Its own small
    /// transaction that does not wait for the disk: a part lost to a power cut reads back as
    /// [`VaultError::PartUnreadable`], and the sync engine then discards the download and
    /// fetches it anew; the file is flushed before its document is stored
    /// ([`Vault::store_pulled_documents`], [`Vault::apply_pull_round`]). Refused with
    /// [`VaultError::DownloadOutOfOrder`] if the held bytes changed since the part was planned
    /// (another writer of the same download; its bytes are then unreadable, and fetched again).
    pub fn record_download_part(&self, part: &WrittenPart) -> Result<(), VaultError> {
        let _unsynced = UnsyncedCommits::begin(&self.conn)?;
        let tx = self.conn.unchecked_transaction()?;
        self.check_next_part(&part.sha256, part.start)?;
        tx.execute(
            "INSERT INTO download_parts (sha256, start_at, size, bytes, file_offset, nonce)
             VALUES (?1, ?2, ?3, x'', ?4, ?5)",
            rusqlite::params![
                part.sha256,
                to_sql_size(part.start),
                to_sql_size(part.size),
                to_sql_size(part.file_offset),
                part.nonce.as_slice()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Checks that the held length of the download of `sha256` is `start` and that it is not a
    /// stored document's bytes already.
    fn check_next_part(&self, sha256: &str, start: u64) -> Result<(), VaultError> {
        let is_document: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM document_bytes WHERE parts_sha256 = ?1)")?
            .query_row([sha256], |r| r.get(0))?;
        let held = held(&self.conn, sha256)?;
        if is_document || held != start {
            return Err(VaultError::DownloadOutOfOrder {
                sha256: sha256.to_string(),
                held,
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
        for_each_part(&self.conn, &self.parts_folder(), sha256, |bytes| {
            digest.update(bytes);
            length += bytes.len() as u64;
            Ok(())
        })?;
        Ok((length, hex::encode(digest.finalize())))
    }

    /// The held bytes of `sha256` in one buffer (for the PDF engine, which reads a whole file).
    pub fn download_bytes(&self, sha256: &str) -> Result<Vec<u8>, VaultError> {
        let mut all = Vec::with_capacity(usize::try_from(self.download_held(sha256)?).unwrap_or(0));
        for_each_part(&self.conn, &self.parts_folder(), sha256, |bytes| {
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
        self.forget_unowned_part_files();
        Ok(())
    }

    /// The folder of the sealed download files.
    pub(crate) fn parts_folder(&self) -> PathBuf {
        self.paths.dir().join(PARTS_FOLDER)
    }

    /// Waits until everything written to the parts folder — every download file and the
    /// folder's entries — and the vault folder's entry for it are on the disk: called before
    /// documents are stored from parts. One `syncfs` of the folder's filesystem rather than an
    /// `fsync` per file: each `fsync` ends with its own flush of the disk's cache, and a first
    /// sync stores documents a hundred at a time (rsync with `--fsync` takes about three times
    /// as long as without on the benchmark machine, docs/benchmarks.md `sync-scale`). It also
    /// writes out whatever else is waiting on that filesystem, which costs time, never safety.
    pub(crate) fn flush_parts_folder(&self) -> Result<(), VaultError> {
        let parts = self.parts_folder();
        let vault_folder = self.paths.dir().to_owned();
        let opened = |path: &Path| match File::open(path) {
            Ok(folder) => Ok(Some(folder)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(VaultError::io(path, error)),
        };
        let Some(parts_dir) = opened(&parts)? else {
            return Ok(());
        };
        rustix::fs::syncfs(&parts_dir).map_err(|e| VaultError::io(&parts, e.into()))?;
        // The parts folder's own entry lives in the vault folder: on the same filesystem it was
        // written out above, on another (a mount point) it is flushed by itself.
        if let Some(vault_dir) = opened(&vault_folder)? {
            let device = |file: &File, path: &Path| {
                file.metadata()
                    .map(|m| std::os::unix::fs::MetadataExt::dev(&m))
                    .map_err(|e| VaultError::io(path, e))
            };
            if device(&vault_dir, &vault_folder)? != device(&parts_dir, &parts)? {
                vault_dir
                    .sync_all()
                    .map_err(|e| VaultError::io(&vault_folder, e))?;
            }
        }
        Ok(())
    }

    /// [`Vault::remove_unowned_part_files`] after a commit that already happened: a file it could
    /// not remove is unreadable (its key row is gone) and goes at the next opening.
    pub(crate) fn forget_unowned_part_files(&self) {
        let _ = self.remove_unowned_part_files();
    }

    /// Removes the files of downloads the database no longer keeps (their key rows are gone, so
    /// they were unreadable already): called after a transaction that dropped parts committed,
    /// and at opening for what a crash left between the two.
    pub(crate) fn remove_unowned_part_files(&self) -> Result<(), VaultError> {
        let folder = self.parts_folder();
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(VaultError::io(&folder, error)),
        };
        let mut owned = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM download_files WHERE file_name = ?1)")?;
        for entry in entries {
            let entry = entry.map_err(|e| VaultError::io(&folder, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !owned.query_row([&name], |r| r.get::<_, bool>(0))? {
                let path = entry.path();
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(VaultError::io(&path, error)),
                }
            }
        }
        Ok(())
    }
}

/// While alive, commits on the connection do not wait for the disk (`synchronous = NORMAL`, which
/// in WAL mode still keeps the database consistent); the vault's `FULL` comes back at drop.
struct UnsyncedCommits<'a>(&'a rusqlite::Connection);

impl<'a> UnsyncedCommits<'a> {
    fn begin(conn: &'a rusqlite::Connection) -> Result<Self, VaultError> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(UnsyncedCommits(conn))
    }
}

impl Drop for UnsyncedCommits<'_> {
    fn drop(&mut self) {
        let _ = self.0.pragma_update(None, "synchronous", "FULL");
    }
}

fn to_sql_size(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

fn cipher(sha256: &str, key: &[u8; 32]) -> Result<LessSafeKey, VaultError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| VaultError::PartUnreadable {
            sha256: sha256.to_string(),
            reason: "its file key is not an AES-256 key".into(),
        })
}

/// What a sealed part is bound to, so a part cannot be moved to another place or download.
fn part_place(sha256: &str, start: u64, size: u64) -> String {
    format!("outpost download part\n{sha256}\n{start}\n{size}")
}

/// The file name and key of the download of `sha256`, if it has a file.
fn download_file(
    conn: &rusqlite::Connection,
    sha256: &str,
) -> Result<Option<(String, FileKey)>, VaultError> {
    let found: Option<(String, Vec<u8>)> = conn
        .query_row(
            "SELECT file_name, file_key FROM download_files WHERE sha256 = ?1",
            [sha256],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((name, key)) = found else {
        return Ok(None);
    };
    let key = Zeroizing::new(key);
    let key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::PartUnreadable {
            sha256: sha256.to_string(),
            reason: "its file key is not 256 bits".into(),
        })?;
    Ok(Some((name, Zeroizing::new(key))))
}

pub(crate) fn held(conn: &rusqlite::Connection, sha256: &str) -> Result<u64, VaultError> {
    let held: Option<i64> = conn
        .prepare_cached("SELECT SUM(size) FROM download_parts WHERE sha256 = ?1")?
        .query_row([sha256], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(held.and_then(|h| u64::try_from(h).ok()).unwrap_or(0))
}

/// Calls `visit` with each held part of `sha256`, first byte first, one part in memory at a time:
/// read from the download's file in `parts_folder` and opened (or, kept by an earlier Outpost,
/// from the database itself).
pub(crate) fn for_each_part(
    conn: &rusqlite::Connection,
    parts_folder: &Path,
    sha256: &str,
    mut visit: impl FnMut(&[u8]) -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    let unreadable = |reason: String| VaultError::PartUnreadable {
        sha256: sha256.to_string(),
        reason,
    };
    let mut statement = conn.prepare_cached(
        "SELECT start_at, size, bytes, file_offset, nonce FROM download_parts
          WHERE sha256 = ?1 ORDER BY start_at",
    )?;
    let mut rows = statement.query([sha256])?;
    let mut sealed_in: Option<(File, LessSafeKey)> = None;
    let mut sealed = Zeroizing::new(Vec::new());
    while let Some(row) = rows.next()? {
        let file_offset: Option<i64> = row.get(3)?;
        let Some(file_offset) = file_offset else {
            let bytes = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            visit(bytes)?;
            continue;
        };
        let (start, size): (i64, i64) = (row.get(0)?, row.get(1)?);
        let nonce: Vec<u8> = row.get(4)?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce)
            .map_err(|_| unreadable("a part's nonce is not 96 bits".into()))?;
        if sealed_in.is_none() {
            let (name, key) = download_file(conn, sha256)?
                .ok_or_else(|| unreadable("the database names no file for its parts".into()))?;
            let path = parts_folder.join(name);
            let file = File::open(&path)
                .map_err(|e| unreadable(format!("{} cannot be opened: {e}", path.display())))?;
            sealed_in = Some((file, cipher(sha256, &key)?));
        }
        let Some((file, cipher)) = sealed_in.as_ref() else {
            continue;
        };
        let (start, size) = (
            u64::try_from(start).unwrap_or(0),
            u64::try_from(size).unwrap_or(0),
        );
        sealed.resize(usize::try_from(size + TAG_LEN).unwrap_or(0), 0);
        file.read_exact_at(&mut sealed, u64::try_from(file_offset).unwrap_or(0))
            .map_err(|e| unreadable(format!("its file is shorter than its parts: {e}")))?;
        let opened = cipher
            .open_in_place(
                nonce,
                Aad::from(part_place(sha256, start, size).as_bytes()),
                &mut sealed,
            )
            .map_err(|_| {
                unreadable("a part does not open with its key (the file was changed)".into())
            })?;
        visit(opened)?;
    }
    Ok(())
}
