//! Annotations as plain data: what the user drew, in PDF user space.
//!
//! The vault stores these records (one row per annotation); [`crate::burn_in`] writes them into a
//! PDF as standard annotation objects. Geometry is always in the page's *user space* (points, origin
//! bottom-left of the media box, before the page's `/Rotate`), so it means the same thing to every
//! PDF reader. [`crate::PageGeometry`] converts between user space and what the user sees.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::PdfError;

/// The largest coordinate accepted (PDF implementations limit reals to about ±32767 in practice).
const COORDINATE_LIMIT: f32 = 14_400.0;
/// At most this many quads, strokes or points per stroke in one annotation.
const PART_LIMIT: usize = 10_000;
/// At most this many characters of contents or author.
const TEXT_LIMIT: usize = 20_000;

/// What an annotation is. Each maps to one PDF annotation `/Subtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationKind {
    /// A highlight over a text selection (`/Highlight`).
    Highlight,
    /// A line under a text selection (`/Underline`).
    Underline,
    /// A line through a text selection (`/StrikeOut`).
    StrikeOut,
    /// A sticky note: an icon whose contents open as a pop-up (`/Text`).
    Note,
    /// Text written directly on the page in a box (`/FreeText`).
    FreeText,
    /// Freehand strokes (`/Ink`).
    Ink,
    /// A rectangle outline (`/Square`).
    Rectangle,
    /// An ellipse outline (`/Circle`).
    Ellipse,
}

impl AnnotationKind {
    /// Every kind, in toolbar order.
    pub const ALL: [AnnotationKind; 8] = [
        AnnotationKind::Highlight,
        AnnotationKind::Underline,
        AnnotationKind::StrikeOut,
        AnnotationKind::Note,
        AnnotationKind::FreeText,
        AnnotationKind::Ink,
        AnnotationKind::Rectangle,
        AnnotationKind::Ellipse,
    ];

    /// The PDF `/Subtype` name of this kind.
    pub fn pdf_subtype(self) -> &'static str {
        match self {
            AnnotationKind::Highlight => "Highlight",
            AnnotationKind::Underline => "Underline",
            AnnotationKind::StrikeOut => "StrikeOut",
            AnnotationKind::Note => "Text",
            AnnotationKind::FreeText => "FreeText",
            AnnotationKind::Ink => "Ink",
            AnnotationKind::Rectangle => "Square",
            AnnotationKind::Ellipse => "Circle",
        }
    }

    /// The stable lower-case name used in storage and the audit chain.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationKind::Highlight => "highlight",
            AnnotationKind::Underline => "underline",
            AnnotationKind::StrikeOut => "strike_out",
            AnnotationKind::Note => "note",
            AnnotationKind::FreeText => "free_text",
            AnnotationKind::Ink => "ink",
            AnnotationKind::Rectangle => "rectangle",
            AnnotationKind::Ellipse => "ellipse",
        }
    }

    /// Whether this kind marks up a text selection (and so takes quads).
    pub fn is_text_markup(self) -> bool {
        matches!(
            self,
            AnnotationKind::Highlight | AnnotationKind::Underline | AnnotationKind::StrikeOut
        )
    }
}

/// A point in PDF user space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal, points from the user-space origin.
    pub x: f32,
    /// Vertical, points from the user-space origin (upwards).
    pub y: f32,
}

/// An axis-aligned rectangle in PDF user space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    /// Smallest x.
    pub left: f32,
    /// Smallest y.
    pub bottom: f32,
    /// Largest x.
    pub right: f32,
    /// Largest y.
    pub top: f32,
}

impl Rect {
    /// The rectangle spanned by two corners, in any order.
    pub fn from_corners(a: Point, b: Point) -> Self {
        Rect {
            left: a.x.min(b.x),
            bottom: a.y.min(b.y),
            right: a.x.max(b.x),
            top: a.y.max(b.y),
        }
    }

    /// The smallest rectangle holding all `points`; `None` when there are none.
    pub fn bounding(points: impl IntoIterator<Item = Point>) -> Option<Self> {
        let mut points = points.into_iter();
        let first = points.next()?;
        let mut rect = Rect::from_corners(first, first);
        for p in points {
            rect.left = rect.left.min(p.x);
            rect.bottom = rect.bottom.min(p.y);
            rect.right = rect.right.max(p.x);
            rect.top = rect.top.max(p.y);
        }
        Some(rect)
    }

    /// This rectangle grown by `margin` on every side.
    pub fn grown(self, margin: f32) -> Self {
        Rect {
            left: self.left - margin,
            bottom: self.bottom - margin,
            right: self.right + margin,
            top: self.top + margin,
        }
    }

    /// Width in points.
    pub fn width(self) -> f32 {
        self.right - self.left
    }

    /// Height in points.
    pub fn height(self) -> f32 {
        self.top - self.bottom
    }

    /// The four corners.
    pub fn corners(self) -> [Point; 4] {
        [
            Point {
                x: self.left,
                y: self.top,
            },
            Point {
                x: self.right,
                y: self.top,
            },
            Point {
                x: self.left,
                y: self.bottom,
            },
            Point {
                x: self.right,
                y: self.bottom,
            },
        ]
    }
}

/// A quadrilateral around a run of selected text, corners in the PDF `/QuadPoints` order:
/// upper-left, upper-right, lower-left, lower-right (as the text reads, so rotated text works).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quad {
    /// The corners: upper-left, upper-right, lower-left, lower-right.
    pub points: [Point; 4],
}

impl Quad {
    /// The quad of an axis-aligned rectangle of horizontal text.
    pub fn from_rect(rect: Rect) -> Self {
        Quad {
            points: rect.corners(),
        }
    }
}

/// Where an annotation is, in PDF user space. Which variant a kind takes is fixed:
/// text markup takes `Quads`, a note takes `Icon`, free text, rectangles and ellipses take `Box`,
/// ink takes `Strokes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Geometry {
    /// Quads around the selected text (highlight, underline, strike-out).
    Quads {
        /// One quad per line or run of text.
        quads: Vec<Quad>,
    },
    /// The top-left corner of a sticky note's icon.
    Icon {
        /// Where the icon's top-left corner is.
        at: Point,
    },
    /// A box (free text, rectangle, ellipse).
    Box {
        /// The box.
        rect: Rect,
    },
    /// Freehand strokes, each a polyline (ink).
    Strokes {
        /// The strokes, in drawing order.
        strokes: Vec<Vec<Point>>,
    },
}

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Colour {
    /// Red, 0–255.
    pub r: u8,
    /// Green, 0–255.
    pub g: u8,
    /// Blue, 0–255.
    pub b: u8,
}

impl Colour {
    /// Highlighter yellow, the default colour of highlights.
    pub const YELLOW: Colour = Colour {
        r: 255,
        g: 230,
        b: 0,
    };
    /// Red, the default colour of shapes, ink and underlines.
    pub const RED: Colour = Colour {
        r: 220,
        g: 30,
        b: 30,
    };

    /// The colour written as `#rrggbb`.
    pub fn to_hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }

    /// Reads `#rrggbb`.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('#')?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).ok();
        Some(Colour {
            r: channel(0)?,
            g: channel(2)?,
            b: channel(4)?,
        })
    }

    /// The colour as three PDF numbers in 0..1.
    pub fn components(self) -> [f32; 3] {
        [
            f32::from(self.r) / 255.0,
            f32::from(self.g) / 255.0,
            f32::from(self.b) / 255.0,
        ]
    }
}

impl Serialize for Colour {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Colour::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a #rrggbb colour: {text}")))
    }
}

/// One annotation, as the user made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Stable identity; also written as the PDF annotation's `/NM`.
    pub id: Uuid,
    /// What it is.
    pub kind: AnnotationKind,
    /// The page, 1-based.
    pub page: u32,
    /// Where it is, in user space.
    pub geometry: Geometry,
    /// Its colour (`/C`).
    pub colour: Colour,
    /// The note or comment text (`/Contents`); for free text, the text shown.
    pub contents: String,
    /// Who made it (`/T`).
    pub author: String,
    /// When it was made, milliseconds since the Unix epoch (recorded, never used for ordering).
    pub created_ms: i64,
    /// When it was last changed, milliseconds since the Unix epoch (`/M`).
    pub modified_ms: i64,
    /// Stroke width in points (shapes, ink, underline and strike-out lines, the free-text border).
    pub line_width: f32,
    /// Font size of free text, in points.
    pub font_size: f32,
}

impl Annotation {
    /// Size of a sticky note's icon, in points.
    pub const NOTE_ICON_SIZE: f32 = 24.0;

    /// Checks that the annotation is well formed: the geometry fits the kind, every number is
    /// finite and within page range, sizes are sane, text is bounded.
    pub fn validate(&self) -> Result<(), PdfError> {
        let invalid = |why: &str| Err(PdfError::InvalidAnnotation(why.to_owned()));
        if self.page == 0 {
            return invalid("page numbers start at 1");
        }
        let fits = match (&self.geometry, self.kind) {
            (Geometry::Quads { .. }, k) => k.is_text_markup(),
            (Geometry::Icon { .. }, k) => k == AnnotationKind::Note,
            (Geometry::Box { .. }, k) => matches!(
                k,
                AnnotationKind::FreeText | AnnotationKind::Rectangle | AnnotationKind::Ellipse
            ),
            (Geometry::Strokes { .. }, k) => k == AnnotationKind::Ink,
        };
        if !fits {
            return invalid("the geometry does not fit the annotation kind");
        }
        let points: Vec<Point> = self.points().collect();
        if points.is_empty() {
            return invalid("the annotation has no points");
        }
        if points.len() > PART_LIMIT * 4 {
            return invalid("the annotation has too many points");
        }
        if let Geometry::Strokes { strokes } = &self.geometry {
            if strokes.iter().any(|s| s.is_empty()) {
                return invalid("an ink stroke has no points");
            }
        }
        if points
            .iter()
            .any(|p| !coordinate_ok(p.x) || !coordinate_ok(p.y))
        {
            return invalid("a coordinate is not a finite number on the page");
        }
        if let Geometry::Box { rect } = &self.geometry {
            if rect.width() < 1.0 || rect.height() < 1.0 {
                return invalid("the box is smaller than one point");
            }
        }
        if !(self.line_width.is_finite() && (0.0..=72.0).contains(&self.line_width)) {
            return invalid("the line width must be between 0 and 72 points");
        }
        if !(self.font_size.is_finite() && (4.0..=144.0).contains(&self.font_size)) {
            return invalid("the font size must be between 4 and 144 points");
        }
        if self.contents.chars().count() > TEXT_LIMIT || self.author.chars().count() > TEXT_LIMIT {
            return invalid("the text is too long");
        }
        Ok(())
    }

    /// Every point of the geometry.
    pub fn points(&self) -> Box<dyn Iterator<Item = Point> + '_> {
        match &self.geometry {
            Geometry::Quads { quads } => Box::new(quads.iter().flat_map(|q| q.points)),
            Geometry::Icon { at } => Box::new(
                [
                    *at,
                    Point {
                        x: at.x + Self::NOTE_ICON_SIZE,
                        y: at.y - Self::NOTE_ICON_SIZE,
                    },
                ]
                .into_iter(),
            ),
            Geometry::Box { rect } => Box::new(rect.corners().into_iter()),
            Geometry::Strokes { strokes } => Box::new(strokes.iter().flatten().copied()),
        }
    }

    /// The annotation's `/Rect`: the bounding box of its geometry, grown to hold its strokes.
    pub fn rect(&self) -> Rect {
        let bounds = Rect::bounding(self.points()).unwrap_or(Rect {
            left: 0.0,
            bottom: 0.0,
            right: 0.0,
            top: 0.0,
        });
        match self.kind {
            AnnotationKind::Ink => bounds.grown(self.line_width / 2.0 + 1.0),
            AnnotationKind::Underline | AnnotationKind::StrikeOut => bounds.grown(1.0),
            _ => bounds,
        }
    }
}

fn coordinate_ok(value: f32) -> bool {
    value.is_finite() && value.abs() <= COORDINATE_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> Annotation {
        Annotation {
            id: Uuid::nil(),
            kind: AnnotationKind::Note,
            page: 1,
            geometry: Geometry::Icon {
                at: Point { x: 100.0, y: 700.0 },
            },
            colour: Colour::YELLOW,
            contents: "check the date".into(),
            author: "Ivanova".into(),
            created_ms: 0,
            modified_ms: 0,
            line_width: 1.0,
            font_size: 12.0,
        }
    }

    #[test]
    fn colour_round_trips_through_hex_and_rejects_junk() {
        let c = Colour {
            r: 1,
            g: 171,
            b: 255,
        };
        assert_eq!(Colour::from_hex(&c.to_hex()), Some(c));
        assert_eq!(Colour::from_hex("#12345"), None);
        assert_eq!(Colour::from_hex("123456"), None);
        assert_eq!(Colour::from_hex("#12345g"), None);
    }

    #[test]
    fn a_note_icon_hangs_down_from_its_corner() {
        let r = note().rect();
        assert_eq!(
            (r.left, r.bottom, r.right, r.top),
            (100.0, 676.0, 124.0, 700.0)
        );
    }

    #[test]
    fn validation_rejects_mismatched_and_non_finite_geometry() {
        let mut a = note();
        assert!(a.validate().is_ok());
        a.kind = AnnotationKind::Highlight;
        assert!(a.validate().is_err(), "a highlight needs quads");
        let mut b = note();
        b.geometry = Geometry::Icon {
            at: Point {
                x: f32::NAN,
                y: 1.0,
            },
        };
        assert!(b.validate().is_err());
        let mut c = note();
        c.kind = AnnotationKind::Ink;
        c.geometry = Geometry::Strokes {
            strokes: vec![vec![]],
        };
        assert!(c.validate().is_err());
        let mut d = note();
        d.page = 0;
        assert!(d.validate().is_err());
    }

    #[test]
    fn annotations_serialise_to_readable_json() {
        let json = serde_json::to_string(&note()).unwrap();
        assert!(json.contains("\"kind\":\"note\""), "{json}");
        assert!(json.contains("\"shape\":\"icon\""), "{json}");
        assert!(json.contains("\"colour\":\"#ffe600\""), "{json}");
        let back: Annotation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, note());
    }
}
