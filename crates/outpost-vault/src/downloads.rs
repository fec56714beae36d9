//! Documents being downloaded from the server. Their bytes are kept part by part as they arrive,
//! so an interrupted download resumes where it stopped, even after a restart, and the transfer
//! never holds more than one part in memory. When the pull round that wanted them is applied, the
//! parts become the document's bytes where they are (`document_bytes.parts_sha256`): a
//! downloaded document is written once.
//!
//! Where the bytes live: in pack files in the vault's `parts/` folder. Each writer — a download
//! thread — appends the parts of every document it fetches to a pack of its own ([`PartsPack`]),
//! so a first sync of thousands of documents makes a handful of files, not one per document
//! (making 2,000 files took ~1.4 s of CPU in a profile of the first sync on an ext4 without a
//! journal). Each part is sealed with AES-256-GCM (ring) under its download's own random 256-bit
//! key, with a random nonce and the part's place (document hash, first byte, size) as
//! associated data. The keys, the nonces and where each part lies are kept only inside the
//! encrypted database, so the packs are unreadable without it; deleting a download's key row
//! (secure delete is on) makes its bytes unreadable while the rest of the pack stays — once the
//! key's old page has also left the write-ahead log at its next checkpoint — and the space of
//! its parts is given back by punching holes in the pack. A pack goes when no part lies in it
//! any more. Large bytes go to files rather than into SQLCipher pages because a page-encrypted,
//! write-ahead-logged database writes every byte twice with a CBC encryption and an HMAC per
//! 4 kB page — several times the cost of one sealed write (3.5 s against ~0.3 s for 500 MB when
//! measured; ARCHITECTURE.md).
//! Parts kept by an earlier Outpost inside the database (`file_offset` NULL) are still read from
//! there, and those it kept in a file per download read as packs of one.

use std::fs::{File, OpenOptions};
use std::marker::PhantomData;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{PulledDocument, Vault, VaultError};

/// The AES-GCM tag that follows each sealed part in its file (the schema's trigger that notes
/// dropped ranges adds the same 16).
const TAG_LEN: u64 = 16;

/// A download's AES-256-GCM key, wiped from memory when dropped.
type FileKey = Zeroizing<[u8; 32]>;

/// The folder (inside the vault's) holding the pack files.
const PARTS_FOLDER: &str = "parts";

/// Fresh randomness for keeping one part: the download's key (used when its first part is kept)
/// and the part's nonce. Drawn by the caller from its RNG, so the vault needs none of its own
/// and tests stay deterministic.
pub struct PartRandomness {
    file_key: Zeroizing<[u8; 32]>,
    nonce: [u8; 12],
}

/// A pack file one writer appends the parts of its downloads to, one part after another: a
/// download thread keeps one for all the documents it fetches, so a first sync of thousands of
/// documents makes a few files rather than one per document. Made by
/// [`Vault::begin_parts_pack`]; parts are planned into it with [`Vault::plan_download_part`],
/// which borrows it mutably until the part is recorded, so a pack never has two writers. While
/// it lives its file is locked (`flock`), and any opening of the vault — this one or another —
/// leaves a locked pack alone: it is neither removed nor punched while no recorded part names
/// it yet, or while its writer may be filling a dropped range again. Once dropped it is never
/// written again (a download resumed later goes on in its new writer's pack).
pub struct PartsPack {
    name: String,
    path: PathBuf,
    /// Open and locked for as long as the pack lives.
    file: File,
}

/// One part of a download, planned by [`Vault::plan_download_part`]: the pack it goes to and
/// where in it, its key and nonce. Writing it needs no vault, so several downloads seal and
/// write at once.
pub struct DownloadPart<'p> {
    pack: &'p mut PartsPack,
    sha256: String,
    start: u64,
    file_offset: u64,
    file_key: FileKey,
    nonce: [u8; 12],
}

impl<'p> DownloadPart<'p> {
    /// Seals `bytes` (not empty; AES-256-GCM, bound to the part's place) and writes them to the
    /// pack, which is cut where the planned part begins (bytes after it were written for a part
    /// that was never recorded). Not held until [`Vault::record_download_part`] records the
    /// result. Takes the plan, so that its nonce seals one part only: a write that failed is
    /// planned again, with fresh randomness.
    pub fn write(self, bytes: &[u8]) -> Result<WrittenPart<'p>, VaultError> {
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
        let (path, file) = (&self.pack.path, &self.pack.file);
        // Cut only when something is past the planned place: truncating a file to the length it
        // has already still makes ext4 start writing it out when it is closed.
        file.metadata()
            .and_then(|m| match m.len() == self.file_offset {
                true => Ok(()),
                false => file.set_len(self.file_offset),
            })
            .and_then(|()| file.write_all_at(&sealed, self.file_offset))
            .map_err(|e| VaultError::io(path, e))?;
        Ok(WrittenPart {
            sha256: self.sha256,
            start: self.start,
            size: bytes.len() as u64,
            file_name: self.pack.name.clone(),
            file_offset: self.file_offset,
            file_key: self.file_key,
            nonce: self.nonce,
            _pack: PhantomData,
        })
    }
}

/// The vault's packs, to be written out to the disk without holding the vault (a flush waits for
/// the disk, and download threads need the vault meanwhile): made by [`Vault::parts_flush`].
#[derive(Debug, Clone)]
pub struct PartsFlush {
    parts: PathBuf,
    vault_folder: PathBuf,
}

/// Proof that [`PartsFlush::run_before_storing`] finished, taken by
/// [`Vault::store_flushed_documents`]: the parts of every document whose last part was recorded
/// before the run began are on the disk.
#[derive(Debug)]
pub struct FlushedParts(());

impl PartsFlush {
    /// [`PartsFlush::run`] before `documents` are stored from their parts; with none to store
    /// there is nothing to wait for.
    pub fn run_before_storing(
        &self,
        documents: &[PulledDocument],
    ) -> Result<FlushedParts, VaultError> {
        match documents.is_empty() {
            true => Ok(FlushedParts(())),
            false => self.run(),
        }
    }

    /// Waits until everything written to the parts folder — every pack and the folder's entries —
    /// and the vault folder's entry for it are on the disk: done before documents are stored
    /// from parts. One `syncfs` of the folder's filesystem rather than an `fsync` per pack: each
    /// `fsync` ends with its own flush of the disk's cache, and a first sync stores documents a
    /// hundred at a time (rsync with `--fsync` takes about three times as long as without on the
    /// benchmark machine, docs/benchmarks.md `sync-scale`). It also writes out whatever else is
    /// waiting on that filesystem, which costs time, never safety.
    fn run(&self) -> Result<FlushedParts, VaultError> {
        let (parts, vault_folder) = (&self.parts, &self.vault_folder);
        let opened = |path: &Path| match File::open(path) {
            Ok(folder) => Ok(Some(folder)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(VaultError::io(path, error)),
        };
        let Some(parts_dir) = opened(parts)? else {
            return Ok(FlushedParts(()));
        };
        rustix::fs::syncfs(&parts_dir).map_err(|e| VaultError::io(parts, e.into()))?;
        // The parts folder's own entry lives in the vault folder: on the same filesystem it was
        // written out above, on another (a mount point) it is flushed by itself.
        if let Some(vault_dir) = opened(vault_folder)? {
            let device = |file: &File, path: &Path| {
                file.metadata()
                    .map(|m| m.dev())
                    .map_err(|e| VaultError::io(path, e))
            };
            if device(&vault_dir, vault_folder)? != device(&parts_dir, parts)? {
                vault_dir
                    .sync_all()
                    .map_err(|e| VaultError::io(vault_folder, e))?;
            }
        }
        Ok(FlushedParts(()))
    }
}

/// A part [`DownloadPart::write`] wrote, to be recorded by [`Vault::record_download_part`]
/// while its pack still lives (and is still locked).
pub struct WrittenPart<'p> {
    sha256: String,
    start: u64,
    size: u64,
    file_name: String,
    file_offset: u64,
    file_key: FileKey,
    nonce: [u8; 12],
    _pack: PhantomData<&'p mut PartsPack>,
}

impl PartRandomness {
    /// Draws what keeping one part needs from `rng`.
    pub fn draw(rng: &mut dyn rand_core::CryptoRngCore) -> PartRandomness {
        let mut fresh = PartRandomness {
            file_key: Zeroizing::new([0; 32]),
            nonce: [0; 12],
        };
        rng.fill_bytes(fresh.file_key.as_mut());
        rng.fill_bytes(&mut fresh.nonce);
        fresh
    }
}

impl Vault {
    /// How many bytes of the download of `sha256` are held (from the first byte, without holes).
    pub fn download_held(&self, sha256: &str) -> Result<u64, VaultError> {
        held(&self.conn, sha256)
    }

    /// Begins a pack file for one writer: made (its name drawn from `rng`) and locked, so that
    /// no opening of the vault takes it while it is being written.
    pub fn begin_parts_pack(
        &self,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<PartsPack, VaultError> {
        let folder = self.parts_folder();
        crate::vault::create_private_dir(&folder)?;
        loop {
            let mut name = [0u8; 16];
            rng.fill_bytes(&mut name);
            let name = hex::encode(name);
            let path = folder.join(&name);
            let file = match OpenOptions::new()
                .create_new(true)
                .read(true)
                .write(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => file,
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(VaultError::io(&path, error)),
            };
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| VaultError::io(&path, e.into()))?;
            // Another opening may have taken the new, empty file for an unused one between its
            // making and its lock: then it is gone, and another name is drawn.
            let linked = file
                .metadata()
                .map(|m| m.nlink() > 0)
                .map_err(|e| VaultError::io(&path, e))?;
            if linked {
                return Ok(PartsPack { name, path, file });
            }
        }
    }

    /// Keeps `bytes` of the download of `sha256`, which must start where the held bytes end
    /// ([`VaultError::DownloadOutOfOrder`] otherwise, and nothing is written), sealed in `pack`
    /// with `fresh`'s nonce: [`Vault::plan_download_part`], [`DownloadPart::write`] and
    /// [`Vault::record_download_part`] in one call. A caller that downloads several documents at
    /// once calls those three itself, so that sealing and writing (the slow part) happen without
    /// holding the vault.
    pub fn keep_download_part(
        &self,
        sha256: &str,
        start: u64,
        bytes: &[u8],
        pack: &mut PartsPack,
        fresh: PartRandomness,
    ) -> Result<(), VaultError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let part = self.plan_download_part(sha256, start, pack, fresh)?;
        let written = part.write(bytes)?;
        self.record_download_part(&written)
    }

    /// Where in `pack` and under which key the part of the download of `sha256` that starts at
    /// byte `start` is to be written (with `fresh`'s nonce; a download's first part also takes
    /// `fresh`'s key). The part must start where the held bytes end
    /// ([`VaultError::DownloadOutOfOrder`] otherwise). Writes nothing: the plan is only a place.
    pub fn plan_download_part<'p>(
        &self,
        sha256: &str,
        start: u64,
        pack: &'p mut PartsPack,
        fresh: PartRandomness,
    ) -> Result<DownloadPart<'p>, VaultError> {
        self.check_next_part(sha256, start)?;
        let file_key = match download_key(&self.conn, sha256)? {
            Some(key) => key,
            None => fresh.file_key,
        };
        // The pack ends where its last recorded part ends: bytes after that were written for a
        // part that was never recorded, and are overwritten (the pack has no other writer).
        let offset: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT file_offset + size + ?2 FROM download_parts
                  WHERE file_name = ?1 ORDER BY file_offset DESC LIMIT 1",
            )?
            .query_row(rusqlite::params![pack.name, TAG_LEN as i64], |r| r.get(0))
            .optional()?;
        Ok(DownloadPart {
            pack,
            sha256: sha256.to_string(),
            start,
            file_offset: offset.and_then(|o| u64::try_from(o).ok()).unwrap_or(0),
            file_key,
            nonce: fresh.nonce,
        })
    }

    /// Records a part [`DownloadPart::write`] wrote: from now on it is held (a download's first
    /// part also records its key). Its own small transaction that does not wait for the disk: a
    /// part lost to a power cut reads back as [`VaultError::PartUnreadable`], and the sync engine
    /// then discards the download and fetches it anew; the packs are flushed before documents
    /// are stored from them ([`Vault::store_pulled_documents`], [`Vault::apply_pull_round`]).
    /// Refused with [`VaultError::DownloadOutOfOrder`] if the held bytes (or the download's key)
    /// changed since the part was planned: another writer of the same download got there first.
    pub fn record_download_part(&self, part: &WrittenPart<'_>) -> Result<(), VaultError> {
        let _unsynced = UnsyncedCommits::begin(&self.conn)?;
        let tx = self.conn.unchecked_transaction()?;
        self.check_next_part(&part.sha256, part.start)?;
        match download_key(&tx, &part.sha256)? {
            None => {
                tx.execute(
                    "INSERT INTO download_keys (sha256, file_key) VALUES (?1, ?2)",
                    rusqlite::params![part.sha256, part.file_key.as_slice()],
                )?;
            }
            Some(key) if *key == *part.file_key => {}
            Some(_) => {
                return Err(VaultError::DownloadOutOfOrder {
                    sha256: part.sha256.clone(),
                    held: held(&tx, &part.sha256)?,
                    start: part.start,
                })
            }
        }
        tx.prepare_cached(
            "INSERT INTO download_parts (sha256, start_at, size, bytes, file_name, file_offset, nonce)
             VALUES (?1, ?2, ?3, x'', ?4, ?5, ?6)",
        )?
        .execute(rusqlite::params![
            part.sha256,
            to_sql_size(part.start),
            to_sql_size(part.size),
            part.file_name,
            to_sql_size(part.file_offset),
            part.nonce.as_slice()
        ])?;
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

    /// The folder of the pack files.
    pub(crate) fn parts_folder(&self) -> PathBuf {
        self.paths.dir().join(PARTS_FOLDER)
    }

    /// What [`PartsFlush::run_before_storing`] needs to flush this vault's packs without holding
    /// the vault.
    pub fn parts_flush(&self) -> PartsFlush {
        PartsFlush {
            parts: self.parts_folder(),
            vault_folder: self.paths.dir().to_owned(),
        }
    }

    /// [`Vault::remove_unowned_part_files`] after a commit that already happened: a file it could
    /// not remove is unreadable (its key row is gone) and goes at the next opening.
    pub(crate) fn forget_unowned_part_files(&self) {
        let _ = self.remove_unowned_part_files();
    }

    /// Gives back the space of dropped parts and removes the packs no part lives in any more:
    /// called after a transaction that dropped parts committed, and at opening for what a crash
    /// left between the two. A dropped part is unreadable already (its download's key row went
    /// with its last part); this only returns its space. A pack whose writer still holds its
    /// lock — in this opening of the vault or in another — is left alone (its first part may not
    /// be recorded yet, and its writer may be filling a dropped range at its end again); its
    /// dropped ranges are punched later, unless a recorded part has come to lie in them since.
    pub(crate) fn remove_unowned_part_files(&self) -> Result<(), VaultError> {
        let folder = self.parts_folder();
        let mut in_use = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM download_parts WHERE file_name = ?1)")?;
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(VaultError::io(&folder, error)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| VaultError::io(&folder, e))?;
            let path = entry.path();
            // Locked first, then looked up: a writer records its parts before it lets go.
            let PackState::Idle(_locked) = pack_state(&path)? else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if !in_use.query_row([&name], |r| r.get::<_, bool>(0))? {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(VaultError::io(&path, error)),
                }
            }
        }
        self.punch_dropped_ranges()
    }

    /// Punches holes where dropped parts lay in packs no writer holds, so the filesystem takes
    /// their blocks back; a range a recorded part now overlaps is left as it is. A filesystem
    /// without hole punching keeps the space until the whole pack goes.
    fn punch_dropped_ranges(&self) -> Result<(), VaultError> {
        let dropped: Vec<(i64, String, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT rowid, file_name, file_offset, length FROM dropped_part_ranges
                  ORDER BY file_name",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        if dropped.is_empty() {
            return Ok(());
        }
        let folder = self.parts_folder();
        let mut overlapped = self.conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM download_parts WHERE file_name = ?1
                 AND file_offset < ?2 + ?3 AND file_offset + size + ?4 > ?2)",
        )?;
        let mut done = Vec::new();
        // The pack of the range before, opened (and locked) once for all its ranges.
        let mut opened: Option<(String, PackState)> = None;
        for (rowid, name, offset, length) in dropped {
            let path = folder.join(&name);
            if opened.as_ref().is_none_or(|(last, _)| *last != name) {
                opened = Some((name.clone(), pack_state(&path)?));
            }
            let pack = match opened.as_ref().map(|(_, state)| state) {
                Some(PackState::Idle(pack)) => pack,
                Some(PackState::Written) => continue,
                Some(PackState::Gone) | None => {
                    done.push(rowid);
                    continue;
                }
            };
            done.push(rowid);
            if overlapped.query_row(
                rusqlite::params![name, offset, length, TAG_LEN as i64],
                |r| r.get::<_, bool>(0),
            )? {
                continue;
            }
            let (Ok(offset), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else {
                continue;
            };
            let flags =
                rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
            match rustix::fs::fallocate(pack, flags, offset, length) {
                Ok(()) => {}
                Err(rustix::io::Errno::OPNOTSUPP) => {}
                Err(error) => return Err(VaultError::io(&path, error.into())),
            }
        }
        let _unsynced = UnsyncedCommits::begin(&self.conn)?;
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut forget =
                tx.prepare_cached("DELETE FROM dropped_part_ranges WHERE rowid = ?1")?;
            for rowid in done {
                forget.execute([rowid])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Whether a pack file is there and whether a writer holds it.
enum PackState {
    /// No such file.
    Gone,
    /// A [`PartsPack`] holds its lock: it is being written.
    Written,
    /// No writer: opened for writing with its lock taken, held until dropped.
    Idle(File),
}

fn pack_state(path: &Path) -> Result<PackState, VaultError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(PackState::Gone),
        Err(error) => return Err(VaultError::io(path, error)),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(PackState::Idle(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(PackState::Written),
        Err(error) => Err(VaultError::io(path, error.into())),
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

/// The key of the download of `sha256`, if it has one (it has parts).
fn download_key(conn: &rusqlite::Connection, sha256: &str) -> Result<Option<FileKey>, VaultError> {
    let found: Option<Vec<u8>> = conn
        .prepare_cached("SELECT file_key FROM download_keys WHERE sha256 = ?1")?
        .query_row([sha256], |r| r.get(0))
        .optional()?;
    let Some(key) = found else {
        return Ok(None);
    };
    let key = Zeroizing::new(key);
    let key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::PartUnreadable {
            sha256: sha256.to_string(),
            reason: "its key is not 256 bits".into(),
        })?;
    Ok(Some(Zeroizing::new(key)))
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
/// read from its pack in `parts_folder` and opened (or, kept by an earlier Outpost, from the
/// database itself).
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
        "SELECT start_at, size, bytes, file_offset, nonce, file_name FROM download_parts
          WHERE sha256 = ?1 ORDER BY start_at",
    )?;
    let mut rows = statement.query([sha256])?;
    let mut key: Option<LessSafeKey> = None;
    // The pack of the part before (a resumed download's parts lie in more than one).
    let mut pack: Option<(String, File)> = None;
    let mut sealed = Zeroizing::new(Vec::new());
    while let Some(row) = rows.next()? {
        let file_offset: Option<i64> = row.get(3)?;
        let file_name: Option<String> = row.get(5)?;
        let (Some(file_offset), Some(file_name)) = (file_offset, file_name) else {
            let bytes = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            visit(bytes)?;
            continue;
        };
        let (start, size): (i64, i64) = (row.get(0)?, row.get(1)?);
        let nonce: Vec<u8> = row.get(4)?;
        let nonce = Nonce::try_assume_unique_for_key(&nonce)
            .map_err(|_| unreadable("a part's nonce is not 96 bits".into()))?;
        if key.is_none() {
            let found = download_key(conn, sha256)?
                .ok_or_else(|| unreadable("the database holds no key for its parts".into()))?;
            key = Some(cipher(sha256, &found)?);
        }
        if pack.as_ref().is_none_or(|(name, _)| *name != file_name) {
            let path = parts_folder.join(&file_name);
            let file = File::open(&path)
                .map_err(|e| unreadable(format!("{} cannot be opened: {e}", path.display())))?;
            pack = Some((file_name, file));
        }
        let (Some(cipher), Some((_, file))) = (key.as_ref(), pack.as_ref()) else {
            continue;
        };
        let (start, size) = (
            u64::try_from(start).unwrap_or(0),
            u64::try_from(size).unwrap_or(0),
        );
        sealed.resize(usize::try_from(size + TAG_LEN).unwrap_or(0), 0);
        file.read_exact_at(&mut sealed, u64::try_from(file_offset).unwrap_or(0))
            .map_err(|e| unreadable(format!("its pack is shorter than its parts: {e}")))?;
        let opened = cipher
            .open_in_place(
                nonce,
                Aad::from(part_place(sha256, start, size).as_bytes()),
                &mut sealed,
            )
            .map_err(|_| {
                unreadable("a part does not open with its key (the pack was changed)".into())
            })?;
        visit(opened)?;
    }
    Ok(())
}
