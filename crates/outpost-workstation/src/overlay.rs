//! What the viewer draws over a page, in *view space* (points of the page as the user sees it:
//! crop box, rotated, origin top-left), and how what the user points at becomes an annotation in
//! PDF user space. The UI only scales view space by its zoom; every conversion happens here.

use outpost_pdf::{AnnotationKind, Colour, Geometry, PageGeometry, Point, Quad, Rect, ViewRect};
use serde::{Deserialize, Serialize};

use crate::annotating::{AnnotationDraft, AnnotationStyle, StoredAnnotation};
use crate::{DocumentId, Session, WorkstationError};

/// One word of a page's text layer, placed in view space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewWord {
    /// The word.
    pub text: String,
    /// Its line, from 0.
    pub line: u32,
    /// Its box.
    pub rect: ViewRect,
}

/// A page's text layer in view space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageTextView {
    /// The page, 1-based.
    pub page: u32,
    /// Width of the page as seen, in points.
    pub width: f32,
    /// Height of the page as seen, in points.
    pub height: f32,
    /// Its words in reading order.
    pub words: Vec<ViewWord>,
}

/// Where a new annotation goes, as the user pointed at it in view space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum ViewShape {
    /// Words `first..=last` of the page's text layer (highlight, underline, strike-out).
    Words {
        /// First word index.
        first: usize,
        /// Last word index.
        last: usize,
    },
    /// A point: where a sticky note's icon goes.
    Icon {
        /// The point.
        at: Point,
    },
    /// A box dragged out (free text, rectangle, ellipse).
    Box {
        /// The box.
        rect: ViewRect,
    },
    /// Freehand strokes.
    Strokes {
        /// The strokes.
        strokes: Vec<Vec<Point>>,
    },
}

/// A new annotation as the viewer describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDraft {
    /// What it is.
    pub kind: AnnotationKind,
    /// Its page, 1-based.
    pub page: u32,
    /// Where, in view space.
    pub shape: ViewShape,
    /// How it looks and what it says (for markup, the selected words when it says nothing).
    #[serde(flatten)]
    pub style: AnnotationStyle,
}

/// An annotation as the viewer draws it over its page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewAnnotation {
    /// Its id.
    pub id: String,
    /// Its revision (sent back with edits and deletes).
    pub revision: i64,
    /// What it is.
    pub kind: AnnotationKind,
    /// Its page.
    pub page: u32,
    /// Its colour.
    pub colour: Colour,
    /// Its text.
    pub contents: String,
    /// Who made it.
    pub author: String,
    /// When it last changed (ms since the epoch).
    pub modified_ms: i64,
    /// Stroke width in points.
    pub line_width: f32,
    /// The boxes to draw: one per quad for markup, the box or icon otherwise.
    pub rects: Vec<ViewRect>,
    /// Ink strokes in view space (empty for other kinds).
    pub strokes: Vec<Vec<Point>>,
}

fn to_view(geometry: &PageGeometry, stored: StoredAnnotation) -> ViewAnnotation {
    let a = stored.annotation;
    let rects = match &a.geometry {
        Geometry::Quads { quads } => quads
            .iter()
            .filter_map(|q| Rect::bounding(q.points))
            .map(|r| geometry.rect_to_view(r))
            .collect(),
        _ => vec![geometry.rect_to_view(a.rect())],
    };
    let strokes = match &a.geometry {
        Geometry::Strokes { strokes } => strokes
            .iter()
            .map(|s| s.iter().map(|p| geometry.to_view(*p)).collect())
            .collect(),
        _ => Vec::new(),
    };
    ViewAnnotation {
        id: a.id.to_string(),
        revision: stored.revision,
        kind: a.kind,
        page: a.page,
        colour: a.colour,
        contents: a.contents,
        author: a.author,
        modified_ms: a.modified_ms,
        line_width: a.line_width,
        rects,
        strokes,
    }
}

impl Session {
    /// The text layer of page `page` in view space, for selecting, copying and marking hits.
    pub fn page_text_view(
        &self,
        document: &DocumentId,
        page: u32,
    ) -> Result<PageTextView, WorkstationError> {
        let text = self.page_text(document, page)?;
        let g = text.geometry;
        Ok(PageTextView {
            page,
            width: g.view_width(),
            height: g.view_height(),
            words: text
                .words
                .into_iter()
                .map(|w| ViewWord {
                    rect: g.rect_to_view(w.rect),
                    text: w.text,
                    line: w.line,
                })
                .collect(),
        })
    }

    /// The words of page `page` a search for `query` matches (indexes into its text layer), so
    /// the viewer can mark the hits.
    pub fn find_on_page(
        &self,
        document: &DocumentId,
        page: u32,
        query: &str,
    ) -> Result<Vec<usize>, WorkstationError> {
        let terms: Vec<String> = query
            .split(|c: char| c.is_whitespace() || c == '"')
            .filter(|t| !t.is_empty() && !matches!(*t, "AND" | "OR" | "NOT"))
            .map(str::to_owned)
            .collect();
        Ok(self.page_text(document, page)?.find(&terms))
    }

    /// Creates an annotation from what the user pointed at in view space.
    pub fn create_annotation_in_view(
        &self,
        document: &DocumentId,
        draft: ViewDraft,
    ) -> Result<StoredAnnotation, WorkstationError> {
        let mut style = draft.style;
        let geometry = match draft.shape {
            ViewShape::Words { first, last } => {
                let text = self.page_text(document, draft.page)?;
                let quads: Vec<Quad> = text.selection_quads(first, last);
                if style.contents.is_empty() {
                    style.contents = text.selected_text(first, last);
                }
                Geometry::Quads { quads }
            }
            ViewShape::Icon { at } => Geometry::Icon {
                at: self.page_geometry(document, draft.page)?.to_user(at),
            },
            ViewShape::Box { rect } => Geometry::Box {
                rect: self.page_geometry(document, draft.page)?.rect_to_user(rect),
            },
            ViewShape::Strokes { strokes } => {
                let g = self.page_geometry(document, draft.page)?;
                Geometry::Strokes {
                    strokes: strokes
                        .into_iter()
                        .map(|s| s.into_iter().map(|p| g.to_user(p)).collect())
                        .collect(),
                }
            }
        };
        self.create_annotation(
            document,
            AnnotationDraft {
                kind: draft.kind,
                page: draft.page,
                geometry,
                style,
            },
        )
    }

    /// The document's annotations placed in view space, page by page.
    pub fn annotations_in_view(
        &self,
        document: &DocumentId,
    ) -> Result<Vec<ViewAnnotation>, WorkstationError> {
        // Burned-in annotations are drawn by the page itself now.
        let stored: Vec<StoredAnnotation> = self
            .annotations(document)?
            .into_iter()
            .filter(|a| !a.burned)
            .collect();
        let mut geometry: Option<(u32, PageGeometry)> = None;
        let mut out = Vec::with_capacity(stored.len());
        for annotation in stored {
            let page = annotation.annotation.page;
            let g = match geometry {
                Some((p, g)) if p == page => g,
                _ => {
                    let g = self.page_geometry(document, page)?;
                    geometry = Some((page, g));
                    g
                }
            };
            out.push(to_view(&g, annotation));
        }
        Ok(out)
    }
}
