//! Document bytes as content-addressed blobs: named by their SHA-256, stored through the
//! `object_store` crate on the local filesystem (the default) or an S3-compatible service.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The blob store setting cannot be used.
    #[error("the blob store setting is unusable: {0}")]
    BadUrl(String),
    /// The name is not a SHA-256 in lowercase hex.
    #[error("{0:?} is not a blob name (64 lowercase hex digits of SHA-256)")]
    BadName(String),
    /// No blob with that hash.
    #[error("no blob {0} in the blob store")]
    Missing(String),
    /// The stored bytes do not hash to their name: the store was damaged or tampered with.
    #[error("blob {0} is damaged: its bytes no longer match its SHA-256; restore it from backup")]
    Damaged(String),
    /// The blob directory could not be created.
    #[error("the blob directory {path} cannot be used: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A finished upload's bytes do not hash to the name it was uploaded under.
    #[error("the uploaded bytes do not have SHA-256 {0}; they were discarded, upload them again")]
    UploadMismatch(String),
    /// The object store failed.
    #[error("the blob store ({store}) failed: {source}")]
    Store {
        /// Which store.
        store: String,
        /// Why.
        source: object_store::Error,
    },
}

/// The most bytes of a blob a download reads into memory at a time.
pub const STREAM_CHUNK_BYTES: u64 = 256 * 1024;

/// The bytes a streamed write hands to the store at a time (S3's smallest multipart part).
pub const WRITE_CHUNK_BYTES: usize = 5 * 1024 * 1024;

/// How many chunks of a streamed write may be on their way to the store at once: with the one
/// being filled, a write holds at most this many plus one chunks in memory.
const WRITES_IN_FLIGHT: usize = 2;

/// What became of the bytes of one upload request ([`BlobStore::stage_stream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    /// The whole body was kept: this many bytes.
    Whole(u64),
    /// The body broke off (`why`); the `kept` bytes that arrived before are kept.
    BrokenOff {
        /// Bytes kept.
        kept: u64,
        /// The body's error.
        why: String,
    },
    /// The body went past the room it had; nothing of it was kept.
    TooLong,
}

/// A blob's bytes as they are read from its store.
pub type BlobStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Bytes `range` of `file`, [`STREAM_CHUNK_BYTES`] at a time, each read on a blocking task. A file
/// shorter than the range ends the stream with an error.
fn read_in_chunks(file: std::fs::File, range: std::ops::Range<u64>) -> BlobStream {
    let file = Arc::new(file);
    let end = range.end;
    futures_util::stream::try_unfold(range.start, move |at| {
        let file = Arc::clone(&file);
        async move {
            if at >= end {
                return Ok(None);
            }
            let length = (end - at).min(STREAM_CHUNK_BYTES);
            let chunk = tokio::task::spawn_blocking(move || {
                let mut buffer = vec![0u8; usize::try_from(length).unwrap_or(0)];
                file.read_exact_at(&mut buffer, at)
                    .map(|()| Bytes::from(buffer))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(Some((chunk, at + length)))
        }
    })
    .boxed()
}

/// The bytes `range` of an object, from what its store answered: a file of the local store is
/// read here, in larger chunks than object_store's own stream (8 KiB, a blocking task each).
fn payload_chunks(payload: GetResultPayload, range: std::ops::Range<u64>) -> BlobStream {
    match payload {
        GetResultPayload::File(file, _) => read_in_chunks(file, range),
        GetResultPayload::Stream(stream) => stream.map_err(std::io::Error::other).boxed(),
    }
}

/// The blob store.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    description: String,
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `name` is a SHA-256 in lowercase hex.
pub fn is_blob_name(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Blobs as files under `directory` (created if missing).
    pub fn local(directory: &Path) -> Result<BlobStore, BlobError> {
        std::fs::create_dir_all(directory).map_err(|source| BlobError::Directory {
            path: directory.display().to_string(),
            source,
        })?;
        let store =
            LocalFileSystem::new_with_prefix(directory).map_err(|source| BlobError::Store {
                store: directory.display().to_string(),
                source,
            })?;
        Ok(BlobStore {
            store: Arc::new(store),
            description: format!("files in {}", directory.display()),
        })
    }

    /// Blobs in an S3 bucket. `url` is `s3://BUCKET` with optional `?endpoint=URL&region=NAME`
    /// (an endpoint for S3-compatible services; `http://` endpoints are allowed). Credentials come
    /// from the usual `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment variables.
    pub fn s3(url: &str) -> Result<BlobStore, BlobError> {
        Self::s3_with_credentials(url, None)
    }

    /// Like [`BlobStore::s3`], with the access key id and secret given instead of taken from the
    /// environment.
    pub fn s3_with_credentials(
        url: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<BlobStore, BlobError> {
        let bad = |why: &str| BlobError::BadUrl(format!("{url}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains('/') {
            return Err(bad("name one bucket: s3://BUCKET"));
        }
        // TLS for the S3 client uses ring, like the server's own HTTPS.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some((key_id, secret)) = credentials {
            builder = builder
                .with_access_key_id(key_id)
                .with_secret_access_key(secret);
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("query parameters are key=value"))?;
            match key {
                "endpoint" => {
                    builder = builder
                        .with_allow_http(value.starts_with("http://"))
                        .with_endpoint(value);
                }
                "region" => builder = builder.with_region(value),
                other => {
                    return Err(bad(&format!(
                        "unknown parameter {other:?} (use endpoint, region)"
                    )))
                }
            }
        }
        let store = builder.build().map_err(|source| BlobError::Store {
            store: url.to_string(),
            source,
        })?;
        Ok(BlobStore {
            store: Arc::new(store),
            description: format!("S3 bucket {bucket}"),
        })
    }

    /// Blobs in any object store, described for logs and errors as `description`.
    pub fn with_object_store(store: Arc<dyn ObjectStore>, description: String) -> BlobStore {
        BlobStore { store, description }
    }

    /// Where the blobs live, for logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn location(name: &str) -> Result<ObjectPath, BlobError> {
        if !is_blob_name(name) {
            return Err(BlobError::BadName(name.to_string()));
        }
        Ok(ObjectPath::from(format!("sha256/{}/{}", &name[..2], name)))
    }

    fn store_error(&self, source: object_store::Error) -> BlobError {
        BlobError::Store {
            store: self.description.clone(),
            source,
        }
    }

    /// Stores `bytes` (once: storing the same bytes again is a no-op) and returns their name.
    pub async fn put(&self, bytes: Bytes) -> Result<String, BlobError> {
        let name = sha256_hex(&bytes);
        let location = Self::location(&name)?;
        match self.store.head(&location).await {
            Ok(_) => return Ok(name),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(self.store_error(error)),
        }
        self.store
            .put(&location, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(name)
    }

    /// The bytes of blob `name`, checked against their hash before they are returned.
    pub async fn get(&self, name: &str) -> Result<Bytes, BlobError> {
        let location = Self::location(name)?;
        let result = match self.store.get(&location).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::Missing(name.to_string()))
            }
            Err(error) => return Err(self.store_error(error)),
        };
        let bytes = result.bytes().await.map_err(|e| self.store_error(e))?;
        if sha256_hex(&bytes) != name {
            return Err(BlobError::Damaged(name.to_string()));
        }
        Ok(bytes)
    }

    /// Bytes `range` of blob `name` as they are read — from the local store at most
    /// [`STREAM_CHUNK_BYTES`] at a time, from S3 as its HTTP client reads them (hyper: at most
    /// ~408 KiB) — so a download holds a chunk or two in memory however large its range. Not
    /// hash-checked (a part cannot be; the reader checks the whole). A read that fails midway
    /// ends the stream with the error; the reader then has a prefix and asks again from there.
    pub async fn stream_range(
        &self,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<BlobStream, BlobError> {
        let location = Self::location(name)?;
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&location, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::Missing(name.to_string()))
            }
            Err(error) => return Err(self.store_error(error)),
        };
        // A store answers a range past the object's end with what there is: a blob shorter
        // than its record says is damaged, and is said so before anything is sent.
        if result.range != range {
            return Err(BlobError::Damaged(name.to_string()));
        }
        Ok(payload_chunks(result.payload, result.range))
    }

    /// The size of blob `name`.
    pub async fn size(&self, name: &str) -> Result<u64, BlobError> {
        let location = Self::location(name)?;
        match self.store.head(&location).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::Missing(name.to_string())),
            Err(error) => Err(self.store_error(error)),
        }
    }

    /// Whether blob `name` is stored.
    pub async fn contains(&self, name: &str) -> Result<bool, BlobError> {
        let location = Self::location(name)?;
        match self.store.head(&location).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(self.store_error(error)),
        }
    }

    fn staging_prefix(owner: &str, name: &str) -> Result<ObjectPath, BlobError> {
        if !is_blob_name(name) {
            return Err(BlobError::BadName(name.to_string()));
        }
        if owner.is_empty()
            || !owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(BlobError::BadName(owner.to_string()));
        }
        Ok(ObjectPath::from(format!("staging/{owner}/{name}")))
    }

    /// The parts of an upload in progress, as (offset, object) sorted by offset.
    async fn staged_parts(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Vec<(u64, object_store::ObjectMeta)>, BlobError> {
        use futures_util::TryStreamExt;
        let prefix = Self::staging_prefix(owner, name)?;
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_error(e))?;
        let mut parts: Vec<(u64, object_store::ObjectMeta)> = metas
            .into_iter()
            .filter_map(|meta| {
                let offset = meta.location.filename()?.parse::<u64>().ok()?;
                Some((offset, meta))
            })
            .collect();
        parts.sort_by_key(|(offset, _)| *offset);
        Ok(parts)
    }

    /// How many bytes of an upload by `owner` under `name` are held, from the start without holes.
    pub async fn staged_len(&self, owner: &str, name: &str) -> Result<u64, BlobError> {
        let mut reach = 0u64;
        for (offset, meta) in self.staged_parts(owner, name).await? {
            if offset > reach {
                break;
            }
            reach = reach.max(offset + meta.size);
        }
        Ok(reach)
    }

    /// Keeps the bytes of `body` as a part of an upload by `owner` under `name` that starts at
    /// `offset`, written to the store as they arrive — at most a few [`WRITE_CHUNK_BYTES`] in
    /// memory, however long the body — and never more than `room` bytes. What arrived before the
    /// body broke off is kept; a body longer than `room` is not kept at all.
    pub async fn stage_stream<S, E>(
        &self,
        owner: &str,
        name: &str,
        offset: u64,
        body: S,
        room: u64,
    ) -> Result<Staged, BlobError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let prefix = Self::staging_prefix(owner, name)?;
        let location = ObjectPath::from(format!("{prefix}/{offset:020}"));
        let mut write = self.streamed_write(&location).await?;
        let staged = match self.write_body(&mut write, body, room).await {
            Ok(staged) => staged,
            Err(error) => {
                let _ = write.abort().await;
                return Err(error);
            }
        };
        match &staged {
            Staged::Whole(kept) | Staged::BrokenOff { kept, .. } if *kept > 0 => {
                write.finish().await.map_err(|e| self.store_error(e))?;
            }
            _ => {
                let _ = write.abort().await;
            }
        }
        Ok(staged)
    }

    /// Hands the bytes of `body` to `write` as they arrive, up to `room` bytes.
    async fn write_body<S, E>(
        &self,
        write: &mut WriteMultipart,
        mut body: S,
        room: u64,
    ) -> Result<Staged, BlobError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut kept = 0u64;
        while let Some(next) = body.next().await {
            match next {
                Ok(bytes) => {
                    if kept + bytes.len() as u64 > room {
                        return Ok(Staged::TooLong);
                    }
                    kept += bytes.len() as u64;
                    self.write_chunk(write, bytes).await?;
                }
                Err(error) => {
                    return Ok(Staged::BrokenOff {
                        kept,
                        why: error.to_string(),
                    })
                }
            }
        }
        Ok(Staged::Whole(kept))
    }

    /// Joins an upload's first `size` bytes, checks their hash against `name` and stores them as
    /// blob `name`, streaming: the parts are read and written a chunk at a time, and the blob
    /// appears in the store only once its hash matched. The parts are removed once the blob is
    /// stored or their bytes proved wrong ([`BlobError::UploadMismatch`]: upload again); a
    /// failure of the store keeps them, so the next attempt joins them again.
    pub async fn finish_upload(&self, owner: &str, name: &str, size: u64) -> Result<(), BlobError> {
        let parts = self.staged_parts(owner, name).await?;
        let outcome = if self.contains(name).await? {
            Ok(())
        } else {
            match self.join_parts(&parts, name, size).await {
                // Another request of the same upload may have joined and removed the parts
                // first: then the blob is there.
                Err(BlobError::UploadMismatch(_)) if self.contains(name).await? => Ok(()),
                outcome => outcome,
            }
        };
        if matches!(outcome, Ok(()) | Err(BlobError::UploadMismatch(_))) {
            for (_, meta) in parts {
                // A part left behind only costs space; the blob (or the refusal) stands.
                let _ = self.store.delete(&meta.location).await;
            }
        }
        outcome
    }

    /// Writes the first `size` bytes of `parts` (sorted by offset, possibly overlapping) as blob
    /// `name` if they hash to it; on any failure the write is abandoned and nothing appears.
    async fn join_parts(
        &self,
        parts: &[(u64, object_store::ObjectMeta)],
        name: &str,
        size: u64,
    ) -> Result<(), BlobError> {
        let location = Self::location(name)?;
        let mut write = self.streamed_write(&location).await?;
        match self.copy_parts(&mut write, parts, size).await {
            Ok((reach, hash)) if reach == size && hash == name => write
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| self.store_error(e)),
            Ok(_) => {
                let _ = write.abort().await;
                Err(BlobError::UploadMismatch(name.to_string()))
            }
            Err(error) => {
                let _ = write.abort().await;
                Err(error)
            }
        }
    }

    /// Hands the first `size` bytes of `parts` to `write`, each byte once; how many bytes were
    /// found from the start without holes, and their SHA-256.
    async fn copy_parts(
        &self,
        write: &mut WriteMultipart,
        parts: &[(u64, object_store::ObjectMeta)],
        size: u64,
    ) -> Result<(u64, String), BlobError> {
        let mut hasher = Sha256::new();
        let mut reach = 0u64;
        for (offset, meta) in parts {
            if *offset > reach || reach >= size {
                break;
            }
            if offset + meta.size <= reach {
                continue;
            }
            let mut chunks = self.read_object(&meta.location, meta.size).await?;
            let mut at = *offset;
            while let Some(chunk) = chunks.next().await {
                let mut chunk = chunk.map_err(|error| {
                    self.store_error(object_store::Error::Generic {
                        store: "blob parts",
                        source: Box::new(error),
                    })
                })?;
                let end = at + chunk.len() as u64;
                if end <= reach {
                    at = end;
                    continue;
                }
                if at < reach {
                    chunk = chunk.slice(usize::try_from(reach - at).unwrap_or(0)..);
                    at = reach;
                }
                if at + chunk.len() as u64 > size {
                    chunk.truncate(usize::try_from(size - at).unwrap_or(0));
                }
                if chunk.is_empty() {
                    break;
                }
                hasher.update(&chunk);
                at += chunk.len() as u64;
                reach = at;
                self.write_chunk(write, chunk).await?;
            }
        }
        Ok((reach, hex::encode(hasher.finalize())))
    }

    /// A write of `location` that becomes visible only when finished (the local store writes a
    /// temporary file and renames it; S3 completes a multipart upload). Every path that does not
    /// finish it aborts it: S3 keeps the parts of an upload neither completed nor aborted (a
    /// bucket rule that aborts incomplete multipart uploads after a day is still advised, for a
    /// server killed mid-write).
    async fn streamed_write(&self, location: &ObjectPath) -> Result<WriteMultipart, BlobError> {
        let upload = self
            .store
            .put_multipart(location)
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(WriteMultipart::new_with_chunk_size(
            upload,
            WRITE_CHUNK_BYTES,
        ))
    }

    /// Hands `chunk` to `write` once fewer than [`WRITES_IN_FLIGHT`] chunks are on their way.
    async fn write_chunk(&self, write: &mut WriteMultipart, chunk: Bytes) -> Result<(), BlobError> {
        write
            .wait_for_capacity(WRITES_IN_FLIGHT)
            .await
            .map_err(|e| self.store_error(e))?;
        write.put(chunk);
        Ok(())
    }

    /// The `size` bytes of the object at `location`, as they are read.
    async fn read_object(&self, location: &ObjectPath, size: u64) -> Result<BlobStream, BlobError> {
        let result = self
            .store
            .get(location)
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(payload_chunks(result.payload, 0..size))
    }
}
