//! Document bytes as content-addressed blobs: named by their SHA-256, stored through the
//! `object_store` crate on the local filesystem (the default) or an S3-compatible service.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
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
    /// The object store failed.
    #[error("the blob store ({store}) failed: {source}")]
    Store {
        /// Which store.
        store: String,
        /// Why.
        source: object_store::Error,
    },
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

    /// Bytes `range` of blob `name` (not hash-checked: a part cannot be; the reader checks the
    /// whole).
    pub async fn get_range(
        &self,
        name: &str,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, BlobError> {
        let location = Self::location(name)?;
        match self.store.get_range(&location, range).await {
            Ok(bytes) => Ok(bytes),
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
}
