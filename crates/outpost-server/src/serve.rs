//! Opening the stores a configuration names and running the HTTPS server with graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;

use crate::blobs::{BlobError, BlobStore};
use crate::clock::{Clock, Entropy};
use crate::http::router;
use crate::service::{Policy, Service};
use crate::store::{PostgresStore, SqliteStore, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be created.
    #[error("the data directory {path} cannot be created: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database setting names no backend this server knows.
    #[error("{0:?} is not a database this server can use: give postgres://user@host:port/name or sqlite:/path/to/file.db")]
    DatabaseUrl(String),
    /// The blob store setting names no backend this server knows.
    #[error("{0:?} is not a blob store this server can use: give file:/path/to/dir or s3://bucket?endpoint=URL")]
    BlobUrl(String),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob store could not be opened.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The listening socket could not be set up.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the server keeps its data.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The data directory (SQLite database, blobs, generated TLS files by default).
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:PATH`; SQLite in the data directory when absent.
    pub database: Option<String>,
    /// `file:PATH` or `s3://BUCKET?endpoint=URL&region=NAME`; `blobs/` in the data directory
    /// when absent.
    pub blobs: Option<String>,
    /// PostgreSQL connections per node.
    pub max_connections: usize,
}

impl StorageConfig {
    /// The defaults for a data directory: SQLite and local blobs inside it.
    pub fn in_dir(data_dir: &Path) -> StorageConfig {
        StorageConfig {
            data_dir: data_dir.to_path_buf(),
            database: None,
            blobs: None,
            max_connections: 16,
        }
    }
}

/// Opens the database (migrating it) and the blob store that `config` names.
pub async fn open_storage(
    config: &StorageConfig,
) -> Result<(Arc<dyn Store>, BlobStore), StartError> {
    if !config.data_dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        // The database and blobs are readable by the server's own user only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.data_dir)
            .map_err(|source| StartError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
    }
    let store: Arc<dyn Store> = match config.database.as_deref() {
        None => Arc::new(SqliteStore::open(&config.data_dir.join("server.db"))?),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(PostgresStore::connect(url, config.max_connections).await?)
        }
        Some(url) => match url.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => Arc::new(SqliteStore::open(Path::new(path))?),
            _ => return Err(StartError::DatabaseUrl(url.to_string())),
        },
    };
    let blobs = match config.blobs.as_deref() {
        None => BlobStore::local(&config.data_dir.join("blobs"))?,
        Some(url) if url.starts_with("s3://") => BlobStore::s3(url)?,
        Some(url) => match url.strip_prefix("file:") {
            Some(path) if !path.is_empty() => BlobStore::local(Path::new(path))?,
            _ => return Err(StartError::BlobUrl(url.to_string())),
        },
    };
    Ok((store, blobs))
}

/// Opens the storage and builds the service over it.
pub async fn open_service(
    config: &StorageConfig,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    policy: Policy,
) -> Result<Service, StartError> {
    let (store, blobs) = open_storage(config).await?;
    Ok(Service::new(store, blobs, clock, entropy, policy))
}

/// A server accepting HTTPS connections in the background.
pub struct RunningServer {
    address: SocketAddr,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The sweep for signatures left waiting; it ends with the server.
    sweep: tokio::task::AbortHandle,
}

impl RunningServer {
    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting connections, lets requests in flight finish for up to `grace`, and waits.
    pub async fn shutdown(self, grace: Duration) -> std::io::Result<()> {
        self.sweep.abort();
        self.handle.graceful_shutdown(Some(grace));
        match self.task.await {
            Ok(outcome) => outcome,
            Err(error) => Err(std::io::Error::other(error)),
        }
    }

    /// Waits until the server stops (after [`RunningServer::shutdown_handle`] is used).
    pub async fn wait(self) -> std::io::Result<()> {
        let outcome = self.task.await;
        self.sweep.abort();
        match outcome {
            Ok(outcome) => outcome,
            Err(error) => Err(std::io::Error::other(error)),
        }
    }

    /// A handle that stops the server gracefully from elsewhere (a signal handler).
    pub fn shutdown_handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }
}

/// How often the server looks for pushed signatures still waiting for their seal.
const SEAL_SWEEP_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// At start, then every [`SEAL_SWEEP_INTERVAL`], seals the signatures a stop or a failure left
/// at PAdES B-B ([`Service::seal_waiting_signatures`]); ends with the service's last user.
async fn seal_waiting_signatures(service: Arc<Service>) {
    let service = Arc::downgrade(&service);
    let mut ticks = tokio::time::interval(SEAL_SWEEP_INTERVAL);
    let mut first = true;
    loop {
        ticks.tick().await;
        let Some(service) = service.upgrade() else {
            return;
        };
        match service.seal_waiting_signatures(first).await {
            Ok(0) => {}
            Ok(sealed) => tracing::info!(sealed, "sealed signatures that were waiting"),
            Err(error) => tracing::warn!(%error, "the sweep for waiting signatures failed"),
        }
        first = false;
    }
}

/// Serves `service` over HTTPS on `listener` until shut down. Call inside a tokio runtime. A
/// background task seals signatures left waiting (see [`seal_waiting_signatures`]).
pub fn start(
    service: Arc<Service>,
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> Result<RunningServer, StartError> {
    let app = router(service.clone());
    start_with_router(service, app, listener, tls)
}

/// Like [`start`], serving `app` (the service's [`router`], with layers of the caller's around it).
pub fn start_with_router(
    service: Arc<Service>,
    app: axum::Router,
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> Result<RunningServer, StartError> {
    let address = listener.local_addr().map_err(|source| StartError::Listen {
        address: "?".into(),
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| StartError::Listen {
            address: address.to_string(),
            source,
        })?;
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))
        .map_err(|source| StartError::Listen {
            address: address.to_string(),
            source,
        })?
        // Each response goes out as it is written: with Nagle's algorithm a response written in
        // two TLS records waits for the client's delayed acknowledgement (about 40 ms).
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
        .handle(handle.clone());
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move { server.serve(app).await });
    let sweep = tokio::spawn(seal_waiting_signatures(service)).abort_handle();
    Ok(RunningServer {
        address,
        handle,
        task,
        sweep,
    })
}
