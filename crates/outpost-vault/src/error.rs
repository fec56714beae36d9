use std::path::PathBuf;

/// Everything that can go wrong with a vault. Each variant says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The user name cannot name a vault.
    #[error("'{0}' is not a valid user name: use 1-64 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit")]
    InvalidUserName(String),
    /// No vault exists for this user on this workstation.
    #[error("there is no vault for user '{user}' on this workstation (looked in {dir}); create one first")]
    NotFound {
        /// The user asked for.
        user: String,
        /// Where the vault was expected.
        dir: PathBuf,
    },
    /// A vault already exists and creating would overwrite it.
    #[error("a vault for user '{user}' already exists in {dir}; open it instead")]
    AlreadyExists {
        /// The user asked for.
        user: String,
        /// The existing vault's folder.
        dir: PathBuf,
    },
    /// The password does not unwrap the vault key.
    #[error("wrong password for the vault of '{user}'; the vault was not changed")]
    WrongPassword {
        /// The user whose vault was asked for.
        user: String,
    },
    /// The device secret for this vault is not in the OS keyring.
    #[error("the device secret for this vault is missing from the OS keyring (service '{service}', account '{account}'); this vault cannot be opened on this device or OS account. Restore the keyring entry or re-sync from the server; the vault was not changed")]
    DeviceSecretMissing {
        /// Keyring service name.
        service: String,
        /// Keyring account name.
        account: String,
    },
    /// The OS keyring could not be used at all.
    #[error("the OS keyring is not available: {0}. Make sure a Secret Service (GNOME Keyring or KWallet) is running and unlocked")]
    KeyringUnavailable(String),
    /// A real vault was asked of the tutorial, or the tutorial's sandbox of a real unlock.
    #[error("{}", match found {
        crate::VaultKind::Sandbox => format!("the vault in {} is the tutorial's practice vault: it opens only in the tutorial, never for real work. Unlock your own vault instead", dir.display()),
        crate::VaultKind::Real => format!("the vault in {} holds real records: the tutorial never opens it. Start the tutorial from its own button", dir.display()),
    })]
    WrongKind {
        /// The vault's folder.
        dir: PathBuf,
        /// What the vault really is.
        found: crate::VaultKind,
    },
    /// A step was recorded for a lesson that was not begun.
    #[error("the lesson '{0}' was not begun; begin it before recording its steps")]
    LessonNotStarted(String),
    /// Something only a real vault keeps was asked of the tutorial's sandbox.
    #[error("the tutorial's practice vault keeps nothing for the server; queue progress in the user's real vault")]
    NotReal,
    /// A tutorial record was asked of a real vault.
    #[error("tutorial lessons are kept only in the tutorial's practice vault; open the tutorial to take them")]
    NotSandbox,
    /// The key file is damaged.
    #[error("the vault key file {path} is damaged ({reason}); restore it from a backup. The vault was not changed")]
    CorruptKeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key unwrapped but the database does not accept it.
    #[error("the vault database {path} does not accept its key: the database file is damaged or was replaced. It was not changed")]
    DatabaseRejectedKey {
        /// The database file.
        path: PathBuf,
    },
    /// Deriving or applying a key failed (bad parameters in a key file, or an internal fault).
    #[error("vault key derivation failed: {0}")]
    KeyDerivation(String),
    /// An annotation changed since the writer last read it (or does not exist / already exists).
    #[error("annotation {id} was changed elsewhere (expected revision {expected:?}, found {found:?}); reload the annotations and try again. Nothing was written")]
    AnnotationChanged {
        /// The annotation.
        id: String,
        /// The revision the writer saw (`None`: it meant to create it).
        expected: Option<i64>,
        /// The revision in the vault (`None`: there is none).
        found: Option<i64>,
    },
    /// A document gained a revision since the writer read it.
    #[error("document {id} changed meanwhile (expected revision {expected}, found {found}); open it again and retry. Nothing was written")]
    DocumentChanged {
        /// The document.
        id: String,
        /// The revision the writer worked on.
        expected: i64,
        /// The revision in the vault.
        found: i64,
    },
    /// No signing key with this id.
    #[error("there is no signing key {0} in this vault")]
    SigningKeyNotFound(String),
    /// The vault was written by a newer Outpost.
    #[error("this vault has schema version {found}, but this Outpost understands versions up to {supported}; update Outpost to open it. The vault was not changed")]
    NewerSchema {
        /// Version found in the vault.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The audit chain refused a change.
    #[error("audit entries are append-only and cannot be changed")]
    AuditAppendOnly,
    /// A document with more pages than the search index can address.
    #[error("the document has {pages} pages; Outpost can index at most {limit}")]
    TooManyPages {
        /// Pages in the document.
        pages: usize,
        /// The most the index takes.
        limit: usize,
    },
    /// Sync was asked of a vault that is not connected to a server.
    #[error("this vault is not connected to a server; connect it first")]
    NoServerAccount,
    /// No document with this id.
    #[error("there is no document {0} in this vault")]
    DocumentNotFound(String),
    /// Downloaded bytes offered out of order: the vault holds a download's bytes from the start
    /// without holes.
    #[error("the download of {sha256} holds {held} bytes, so the next part must start there, not at {start}; the download resumes from {held}")]
    DownloadOutOfOrder {
        /// The bytes being downloaded.
        sha256: String,
        /// Bytes held.
        held: u64,
        /// Where the offered part starts.
        start: u64,
    },
    /// A download was to be stored as a document before all of its bytes arrived.
    #[error("the download of {sha256} is not complete ({held} bytes held); sync again to fetch the rest")]
    DownloadIncomplete {
        /// The bytes being downloaded.
        sha256: String,
        /// Bytes held.
        held: u64,
    },
    /// The sealed bytes of a download (or of a downloaded document) cannot be read back.
    #[error("the stored bytes of {sha256} cannot be read back: {reason}; the vault's parts folder was changed outside Outpost — sync again to fetch a download anew, or have the document assigned again")]
    PartUnreadable {
        /// The bytes being read.
        sha256: String,
        /// What was wrong.
        reason: String,
    },
    /// A search query that cannot be understood.
    #[error(transparent)]
    Search(#[from] SearchQueryError),
    /// A database operation failed.
    #[error("vault database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// Migrating the schema failed; the transaction was rolled back.
    #[error("upgrading the vault schema failed and was rolled back: {0}")]
    Migration(String),
    /// A file operation failed.
    #[error("vault file error at {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl VaultError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Why a search query could not be run. The messages are meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchQueryError {
    /// Nothing to search for.
    #[error("type a word or a \"quoted phrase\" to search for")]
    Empty,
    /// A `"` without its partner.
    #[error("a quotation mark is not closed: close the \"phrase\" or remove the quote")]
    UnclosedQuote,
    /// A `*` with no letters before it.
    #[error(
        "'*' finds words starting with what comes before it: put at least one letter before '*'"
    )]
    BarePrefix,
    /// An empty pair of quotes.
    #[error("the quotes \"\" contain no words")]
    EmptyPhrase,
}
