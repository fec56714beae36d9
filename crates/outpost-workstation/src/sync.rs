//! Sync with the server, pull side: connecting a vault to a server (device enrolment) and pull
//! rounds that download what became visible and purge what was revoked, applied to the vault with
//! the new cursor in one transaction. Push, conflicts and the background engine come next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64ct::Encoding;
use outpost_protocol as wire;
use outpost_vault::{
    AppliedPull, DocumentId, NewDocument, PullRound, PulledDocument, ServerAccount,
};

use crate::server_client::{DeviceKey, ServerClient, ServerError};
use crate::{Session, WorkstationError};

/// How long one request to the server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Changes asked for per pull page.
const PULL_PAGE: u32 = 200;

/// Where a pull round is, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullProgress {
    /// The changes are known: this many documents to download.
    Planned {
        /// Documents to download.
        downloads: usize,
        /// Documents to purge.
        purges: usize,
    },
    /// Downloading one document.
    Downloading {
        /// Its title.
        title: String,
        /// Bytes so far.
        done: u64,
        /// Its size.
        total: u64,
    },
}

/// What a pull round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Documents stored or linked.
    pub stored: Vec<DocumentId>,
    /// Documents purged because their assignment ended.
    pub purged: Vec<DocumentId>,
    /// The server documents whose head moved on (revisions sync in a later step), left as they are.
    pub deferred: Vec<String>,
    /// Annotation changes pulled but not merged yet (merging comes with the push side); while
    /// there are any, the cursor stays where it was, so nothing is skipped.
    pub unmerged_annotations: usize,
    /// The cursor now stored.
    pub cursor: i64,
}

impl Session {
    /// Connects this vault to a server: enrols this workstation as a device of `username` (a new
    /// device key from the session's RNG) and keeps the address, pinned CA, key and tokens in
    /// the vault.
    #[allow(clippy::too_many_arguments)]
    pub fn connect_server(
        &self,
        base_url: &str,
        ca_pem: &str,
        username: &str,
        password: &str,
        second_factor: wire::SecondFactor,
        device_name: &str,
    ) -> Result<wire::UserInfo, WorkstationError> {
        let client = ServerClient::new(base_url, ca_pem.as_bytes(), REQUEST_TIMEOUT)?;
        let key = self.new_device_key();
        let session = client.enrol(username, password, second_factor, device_name, &key)?;
        let account = ServerAccount {
            base_url: base_url.to_string(),
            ca_pem: ca_pem.to_string(),
            username: username.to_string(),
            device_id: Some(session.device_id.clone()),
            device_key: key.secret_bytes(),
            access_token: Some((session.access_token.clone(), session.access_expires_at)),
            refresh_token: Some((session.refresh_token.clone(), session.refresh_expires_at)),
            pull_cursor: 0,
        };
        self.vault().save_server_account(&account)?;
        Ok(session.user)
    }

    /// The server account this vault syncs with, if any (no secrets leave it here but to the
    /// caller's own process).
    pub fn server_account(&self) -> Result<Option<ServerAccount>, WorkstationError> {
        Ok(self.vault().server_account()?)
    }

    /// One pull round: asks the server what changed since the stored cursor, downloads each newly
    /// visible document (checked against its SHA-256, validated by pdfium), purges each revoked
    /// one, and stores the new cursor — all applied in one vault transaction. Renews the session
    /// with the device key when the access token has expired. A server restored from a backup
    /// (`cursor_ahead`) is pulled again from the start.
    pub fn sync_pull(
        &self,
        cancel: &AtomicBool,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PullReport, WorkstationError> {
        let (mut account, client, key) = self.server_link()?;
        let cursor = account.pull_cursor;
        let (changes, cursor) = match self.with_access(&client, &key, &mut account, |token| {
            client.pull_round(token, cursor, PULL_PAGE)
        }) {
            Err(WorkstationError::Server(ServerError::Refused { code, .. }))
                if code == wire::error_codes::CURSOR_AHEAD =>
            {
                self.with_access(&client, &key, &mut account, |token| {
                    client.pull_round(token, 0, PULL_PAGE)
                })?
            }
            other => other?,
        };

        let links = self.vault().server_document_links()?;
        let mut downloads = Vec::new();
        let mut removed = Vec::new();
        let mut deferred = Vec::new();
        let mut unmerged_annotations = 0;
        for change in changes {
            match change {
                wire::DocumentChange::Visible { position, document } => {
                    match links.iter().find(|link| link.server_id == document.id) {
                        Some(link) if link.head_sha256 == document.sha256 => {}
                        Some(_) => deferred.push(document.id),
                        None => downloads.push((position, document)),
                    }
                }
                wire::DocumentChange::Removed { document_id, .. } => removed.push(document_id),
                wire::DocumentChange::Annotation { .. } => unmerged_annotations += 1,
            }
        }
        progress(PullProgress::Planned {
            downloads: downloads.len(),
            purges: removed.len(),
        });

        let mut fetched = Vec::new();
        for (position, document) in downloads {
            if cancel.load(Ordering::Relaxed) {
                return Err(WorkstationError::Sync(
                    "the sync was cancelled; nothing of this round was stored".into(),
                ));
            }
            let mut bytes = Vec::new();
            let title = document.title.clone();
            self.with_access(&client, &key, &mut account, |token| {
                client.download(
                    token,
                    &document,
                    &mut bytes,
                    &mut |done, total| {
                        progress(PullProgress::Downloading {
                            title: title.clone(),
                            done,
                            total,
                        })
                    },
                    cancel,
                )
            })?;
            let bytes = Arc::new(bytes);
            let info = self
                .pdf
                .inspect(bytes.clone())
                .map_err(crate::error::classify_pdf_error)?;
            fetched.push((position, document, bytes, info.page_texts));
        }
        let round = PullRound {
            visible: fetched
                .iter()
                .map(|(position, document, bytes, page_texts)| PulledDocument {
                    server_id: document.id.clone(),
                    position: *position,
                    document: NewDocument {
                        id: self.new_document_id(),
                        bytes: bytes.as_slice(),
                        sha256: document.sha256.clone(),
                        title: document.title.clone(),
                        page_texts: page_texts.clone(),
                        source_name: format!("server document {}", document.id),
                    },
                })
                .collect(),
            removed,
            // Annotation merging is not built yet: keep the cursor so that those changes are
            // pulled again (and merged) later, instead of being skipped for good.
            cursor: if unmerged_annotations > 0 {
                account.pull_cursor
            } else {
                cursor
            },
        };
        let AppliedPull { stored, purged } = self.vault().apply_pull_round(&round)?;
        Ok(PullReport {
            stored,
            purged,
            deferred,
            unmerged_annotations,
            cursor: round.cursor,
        })
    }

    /// Sends the certificate request of signing key `key_id` to the organisation's CA on the
    /// server, imports the certificate it issues with its chain, and trusts the CA for validating
    /// signatures. The key never leaves the vault; only its request does.
    pub fn request_signer_certificate(
        &self,
        key_id: &str,
    ) -> Result<crate::SigningKeyInfo, WorkstationError> {
        let request_pem = self.signing_key(key_id)?.request_pem;
        let request_der = pem_body(&request_pem, "CERTIFICATE REQUEST").ok_or_else(|| {
            WorkstationError::Signing("the key's certificate request is unreadable".into())
        })?;
        let (mut account, client, key) = self.server_link()?;
        let issued = self.with_access(&client, &key, &mut account, |token| {
            client.request_certificate(token, &request_der)
        })?;
        let decode = |text: &str| {
            base64ct::Base64UrlUnpadded::decode_vec(text).map_err(|_| {
                WorkstationError::Sync("the server sent a certificate that is not base64url".into())
            })
        };
        let mut bundle = pem_block("CERTIFICATE", &decode(&issued.certificate)?);
        for link in &issued.chain {
            let der = decode(link)?;
            bundle.push_str(&pem_block("CERTIFICATE", &der));
            self.add_trust_anchor(&der)?;
        }
        self.import_certificate(key_id, bundle.as_bytes())
    }

    /// The stored account, a client for its server, and the device key.
    fn server_link(&self) -> Result<(ServerAccount, ServerClient, DeviceKey), WorkstationError> {
        let account = self
            .vault()
            .server_account()?
            .ok_or(outpost_vault::VaultError::NoServerAccount)?;
        let client = ServerClient::new(
            &account.base_url,
            account.ca_pem.as_bytes(),
            REQUEST_TIMEOUT,
        )?;
        let key = DeviceKey::from_secret_bytes(&account.device_key).ok_or_else(|| {
            WorkstationError::Sync(
                "the stored device key is unreadable; connect to the server again".into(),
            )
        })?;
        Ok((account, client, key))
    }

    /// Runs `request` with the account's access token; on `token_expired` renews the session
    /// with the device key (storing the new tokens in the vault) and runs it once more.
    fn with_access<T>(
        &self,
        client: &ServerClient,
        key: &DeviceKey,
        account: &mut ServerAccount,
        mut request: impl FnMut(&str) -> Result<T, ServerError>,
    ) -> Result<T, WorkstationError> {
        let token = account
            .access_token
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        match request(&token) {
            Err(ServerError::Refused { code, .. }) if code == wire::error_codes::TOKEN_EXPIRED => {}
            other => return Ok(other?),
        }
        let (Some(device_id), Some((refresh_token, refresh_expires_at))) =
            (account.device_id.clone(), account.refresh_token.clone())
        else {
            return Err(WorkstationError::Sync(
                "the server session has ended; sign in to the server again".into(),
            ));
        };
        let current = wire::Session {
            access_token: token,
            access_expires_at: 0,
            refresh_token,
            refresh_expires_at,
            device_id,
            user: wire::UserInfo {
                id: String::new(),
                username: account.username.clone(),
                display_name: String::new(),
                role: wire::Role::Staff,
                unit: None,
            },
        };
        let renewed = match client.refresh(&current, key) {
            Ok(renewed) => renewed,
            Err(ServerError::Refused { code, .. }) if code == wire::error_codes::INVALID_REFRESH => {
                return Err(WorkstationError::Sync(
                    "the server session has ended; sign in to the server again (nothing waiting to sync is lost)".into(),
                ))
            }
            Err(other) => return Err(other.into()),
        };
        account.access_token = Some((renewed.access_token.clone(), renewed.access_expires_at));
        account.refresh_token = Some((renewed.refresh_token.clone(), renewed.refresh_expires_at));
        self.vault().save_server_account(account)?;
        Ok(request(&renewed.access_token)?)
    }
}

/// The DER inside the first PEM block labelled `label`.
fn pem_body(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let text: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64ct::Base64::decode_vec(&text).ok()
}

/// `der` as a PEM block.
fn pem_block(label: &str, der: &[u8]) -> String {
    let text = base64ct::Base64::encode_string(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
