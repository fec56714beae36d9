//! Viewing: a document's pages rendered on demand by the PDF worker, with a bounded in-memory
//! cache of rendered pages (never written to disk) and the text layer of each page.
//!
//! The viewer tells the engine which pages are on screen; a queued render for a page that has
//! scrolled out of that range is dropped when its turn comes, so a fast scroll through a long
//! document never makes the user wait for pages they passed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use outpost_pdf::{PageGeometry, PageText, RenderedPage, StillWanted, ViewedDocument};
use outpost_vault::DocumentRevision;
use serde::Serialize;

use crate::{DocumentId, DocumentSummary, Session, WorkstationError};

/// Rendered pages kept in memory, in bytes of PNG.
pub const RENDER_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The widest thumbnail rendered, in pixels.
pub const THUMBNAIL_MAX_WIDTH: u32 = 320;
/// Pages either side of the visible range that are still worth rendering (read-ahead).
const READ_AHEAD_PAGES: u32 = 2;

/// What the viewer needs to lay out a document before any page is rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentView {
    /// The document.
    pub document: DocumentSummary,
    /// Each page's size as seen (crop box, rotated), in points.
    pub page_sizes: Vec<(f32, f32)>,
}

/// State shared by a session's viewers: the open documents' bytes (in memory only), the pages on
/// screen, and the cache of rendered pages.
pub(crate) struct Viewing {
    open: HashMap<DocumentId, ViewedDocument>,
    visible: Arc<Mutex<HashMap<DocumentId, (u32, u32)>>>,
    cache: LruCache<(DocumentId, u32, u32), Arc<RenderedPage>>,
    cached_bytes: usize,
}

impl Default for Viewing {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
            visible: Arc::new(Mutex::new(HashMap::new())),
            cache: LruCache::unbounded(),
            cached_bytes: 0,
        }
    }
}

impl Viewing {
    fn insert(&mut self, key: (DocumentId, u32, u32), page: Arc<RenderedPage>) {
        self.cached_bytes += page.png.len();
        if let Some(old) = self.cache.put(key, page) {
            self.cached_bytes -= old.png.len();
        }
        while self.cached_bytes > RENDER_CACHE_BYTES {
            match self.cache.pop_lru() {
                Some((_, evicted)) => self.cached_bytes -= evicted.png.len(),
                None => break,
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// Opens `document` for viewing: audited as a view, its bytes held in memory for the worker,
    /// and the page sizes returned for layout.
    pub fn view_document(&self, document: &DocumentId) -> Result<DocumentView, WorkstationError> {
        let summary = self.open_document(document)?;
        let viewed = self.viewed_document(document)?;
        let page_sizes = self
            .pdf
            .page_sizes(&viewed)
            .map_err(WorkstationError::Engine)?;
        Ok(DocumentView {
            document: summary,
            page_sizes,
        })
    }

    /// The document's bytes as the worker knows them, read from the vault on first use.
    pub(crate) fn viewed_document(
        &self,
        document: &DocumentId,
    ) -> Result<ViewedDocument, WorkstationError> {
        if let Some(found) = lock(&self.viewing).open.get(document) {
            return Ok(found.clone());
        }
        let (_, viewed) = self.head_document(document, None)?;
        lock(&self.viewing)
            .open
            .insert(document.clone(), viewed.clone());
        Ok(viewed)
    }

    /// The document's latest revision and its bytes, keyed by their SHA-256 (the revision's), so
    /// that a key always names the same bytes in the PDF worker, whatever revision comes later.
    /// Read through `reader` (a batch worker's own connection) when given, so that reading does
    /// not wait for the vault while another worker writes; else through the vault.
    pub(crate) fn head_document(
        &self,
        document: &DocumentId,
        reader: Option<&outpost_vault::VaultReader>,
    ) -> Result<(DocumentRevision, ViewedDocument), WorkstationError> {
        let (latest, bytes) = match reader {
            Some(reader) => reader.head(document)?,
            None => self.vault().document_head(document)?,
        };
        let head = ViewedDocument {
            key: latest.sha256.clone(),
            bytes: Arc::new(bytes),
        };
        Ok((latest, head))
    }

    /// Whether the viewer was moved past page 1 of some open document (the first page on screen
    /// is page 2 or a later one).
    pub(crate) fn viewer_past_first_page(&self) -> bool {
        let viewing = self.viewing.lock().unwrap_or_else(|p| p.into_inner());
        let visible = lock(&viewing.visible);
        visible.values().any(|&(first, _)| first >= 2)
    }

    /// Says which pages (1-based, inclusive) are on screen; renders queued for pages further
    /// away than a little read-ahead are dropped.
    pub fn set_visible_pages(&self, document: &DocumentId, first: u32, last: u32) {
        let viewing = lock(&self.viewing);
        lock(&viewing.visible).insert(document.clone(), (first.min(last), first.max(last)));
    }

    /// Renders page `page` (1-based) `width` pixels wide, as PNG, from the cache when it can.
    /// Fails with [`outpost_pdf::PdfError::NoLongerWanted`] if the page left the screen while
    /// the request waited.
    pub fn render_page(
        &self,
        document: &DocumentId,
        page: u32,
        width: u32,
    ) -> Result<Arc<RenderedPage>, WorkstationError> {
        self.render(document, page, width, false)
    }

    /// Renders a thumbnail of page `page` for the page strip: like [`Self::render_page`], but
    /// never dropped for being off screen (the strip shows pages the main view does not).
    pub fn render_thumbnail(
        &self,
        document: &DocumentId,
        page: u32,
        width: u32,
    ) -> Result<Arc<RenderedPage>, WorkstationError> {
        self.render(document, page, width.min(THUMBNAIL_MAX_WIDTH), true)
    }

    fn render(
        &self,
        document: &DocumentId,
        page: u32,
        width: u32,
        thumbnail: bool,
    ) -> Result<Arc<RenderedPage>, WorkstationError> {
        let key = (document.clone(), page, width);
        let visible = {
            let mut viewing = lock(&self.viewing);
            if let Some(hit) = viewing.cache.get(&key) {
                return Ok(hit.clone());
            }
            viewing.visible.clone()
        };
        let viewed = self.viewed_document(document)?;
        let watched = document.clone();
        let wanted = StillWanted::when(move || match lock(&visible).get(&watched) {
            _ if thumbnail => true,
            Some(&(first, last)) => {
                page + READ_AHEAD_PAGES >= first && page <= last.saturating_add(READ_AHEAD_PAGES)
            }
            None => true,
        });
        let rendered = Arc::new(
            self.pdf
                .render(&viewed, page, width, &wanted)
                .map_err(WorkstationError::Engine)?,
        );
        lock(&self.viewing).insert(key, rendered.clone());
        Ok(rendered)
    }

    /// The words of page `page` with their boxes, and the page's geometry.
    pub fn page_text(
        &self,
        document: &DocumentId,
        page: u32,
    ) -> Result<PageText, WorkstationError> {
        let viewed = self.viewed_document(document)?;
        self.pdf
            .page_text(&viewed, page)
            .map_err(WorkstationError::Engine)
    }

    /// The crop box and rotation of page `page`.
    pub fn page_geometry(
        &self,
        document: &DocumentId,
        page: u32,
    ) -> Result<PageGeometry, WorkstationError> {
        let viewed = self.viewed_document(document)?;
        self.pdf
            .page_geometry(&viewed, page)
            .map_err(WorkstationError::Engine)
    }

    /// Closes the viewer of `document`: its bytes and rendered pages leave memory.
    pub fn close_view(&self, document: &DocumentId) {
        let removed = {
            let mut viewing = lock(&self.viewing);
            lock(&viewing.visible).remove(document);
            let stale: Vec<_> = viewing
                .cache
                .iter()
                .filter(|((d, _, _), _)| d == document)
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                if let Some(page) = viewing.cache.pop(&key) {
                    viewing.cached_bytes -= page.png.len();
                }
            }
            viewing.open.remove(document)
        };
        if let Some(viewed) = removed {
            // The worker may already have stopped (at exit); nothing is left to free then.
            let _ = self.pdf.close(&viewed.key);
        }
    }

    /// Closes every viewer (at lock).
    pub(crate) fn close_all_views(&self) {
        let open: Vec<DocumentId> = lock(&self.viewing).open.keys().cloned().collect();
        for document in open {
            self.close_view(&document);
        }
    }

    /// Bytes of rendered pages held in memory now (never more than [`RENDER_CACHE_BYTES`]).
    pub fn render_cache_bytes(&self) -> usize {
        lock(&self.viewing).cached_bytes
    }
}
