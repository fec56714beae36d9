//! Page geometry: how PDF user space maps onto the page the user sees.
//!
//! The user sees the page's crop box, turned clockwise by its `/Rotate`. *View space* is that
//! picture in points: origin at the top-left corner, x to the right, y downwards. Everything stored
//! (annotations, word boxes) is in user space; the UI works in view space scaled by its zoom, and
//! these conversions are the only bridge between the two.

use serde::{Deserialize, Serialize};

use crate::annotation::{Point, Rect};

/// The boxes and rotation of one page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PageGeometry {
    /// The crop box in user space: the visible part of the page.
    pub crop: Rect,
    /// Clockwise rotation in degrees: 0, 90, 180 or 270.
    pub rotation: u16,
}

impl PageGeometry {
    /// Geometry from a crop box and any `/Rotate` value (normalised to 0, 90, 180 or 270).
    pub fn new(crop: Rect, rotate: i32) -> Self {
        let quarter = (rotate.rem_euclid(360) / 90) as u16;
        PageGeometry {
            crop,
            rotation: quarter * 90,
        }
    }

    /// Width of the page as seen, in points.
    pub fn view_width(&self) -> f32 {
        if self.rotation.is_multiple_of(180) {
            self.crop.width()
        } else {
            self.crop.height()
        }
    }

    /// Height of the page as seen, in points.
    pub fn view_height(&self) -> f32 {
        if self.rotation.is_multiple_of(180) {
            self.crop.height()
        } else {
            self.crop.width()
        }
    }

    /// Where a user-space point appears in view space.
    pub fn to_view(&self, p: Point) -> Point {
        let c = self.crop;
        match self.rotation {
            90 => Point {
                x: p.y - c.bottom,
                y: p.x - c.left,
            },
            180 => Point {
                x: c.right - p.x,
                y: p.y - c.bottom,
            },
            270 => Point {
                x: c.top - p.y,
                y: c.right - p.x,
            },
            _ => Point {
                x: p.x - c.left,
                y: c.top - p.y,
            },
        }
    }

    /// The user-space point shown at a view-space point (the inverse of [`Self::to_view`]).
    pub fn to_user(&self, v: Point) -> Point {
        let c = self.crop;
        match self.rotation {
            90 => Point {
                x: v.y + c.left,
                y: v.x + c.bottom,
            },
            180 => Point {
                x: c.right - v.x,
                y: v.y + c.bottom,
            },
            270 => Point {
                x: c.right - v.y,
                y: c.top - v.x,
            },
            _ => Point {
                x: v.x + c.left,
                y: c.top - v.y,
            },
        }
    }

    /// A user-space rectangle as it appears in view space (`top` is the smaller y there).
    pub fn rect_to_view(&self, r: Rect) -> ViewRect {
        let a = self.to_view(Point {
            x: r.left,
            y: r.bottom,
        });
        let b = self.to_view(Point {
            x: r.right,
            y: r.top,
        });
        ViewRect {
            x: a.x.min(b.x),
            y: a.y.min(b.y),
            width: (a.x - b.x).abs(),
            height: (a.y - b.y).abs(),
        }
    }

    /// The user-space rectangle shown by a view-space rectangle.
    pub fn rect_to_user(&self, v: ViewRect) -> Rect {
        Rect::from_corners(
            self.to_user(Point { x: v.x, y: v.y }),
            self.to_user(Point {
                x: v.x + v.width,
                y: v.y + v.height,
            }),
        )
    }
}

/// A rectangle in view space: top-left corner and size, in points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewRect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crop() -> Rect {
        Rect {
            left: 10.0,
            bottom: 20.0,
            right: 210.0,
            top: 320.0,
        }
    }

    #[test]
    fn view_size_swaps_for_quarter_turns() {
        let upright = PageGeometry::new(crop(), 0);
        assert_eq!(
            (upright.view_width(), upright.view_height()),
            (200.0, 300.0)
        );
        let turned = PageGeometry::new(crop(), -270);
        assert_eq!(turned.rotation, 90);
        assert_eq!((turned.view_width(), turned.view_height()), (300.0, 200.0));
    }

    #[test]
    fn corners_land_where_a_reader_shows_them() {
        // The crop box's top-left corner (user space) is seen at the view's origin when upright;
        // turned 90° clockwise, the bottom-left corner comes to the top-left.
        let top_left = Point { x: 10.0, y: 320.0 };
        let bottom_left = Point { x: 10.0, y: 20.0 };
        let bottom_right = Point { x: 210.0, y: 20.0 };
        let top_right = Point { x: 210.0, y: 320.0 };
        let origin = Point { x: 0.0, y: 0.0 };
        assert_eq!(PageGeometry::new(crop(), 0).to_view(top_left), origin);
        assert_eq!(PageGeometry::new(crop(), 90).to_view(bottom_left), origin);
        assert_eq!(PageGeometry::new(crop(), 180).to_view(bottom_right), origin);
        assert_eq!(PageGeometry::new(crop(), 270).to_view(top_right), origin);
    }

    #[test]
    fn view_and_user_space_are_inverse_for_every_rotation() {
        for rotation in [0, 90, 180, 270] {
            let g = PageGeometry::new(crop(), rotation);
            for p in [
                Point { x: 10.0, y: 20.0 },
                Point { x: 77.5, y: 300.25 },
                Point { x: 210.0, y: 320.0 },
            ] {
                let back = g.to_user(g.to_view(p));
                assert!((back.x - p.x).abs() < 1e-4 && (back.y - p.y).abs() < 1e-4);
            }
            let r = Rect {
                left: 50.0,
                bottom: 60.0,
                right: 90.0,
                top: 100.0,
            };
            assert_eq!(g.rect_to_user(g.rect_to_view(r)), r, "rotation {rotation}");
            let v = g.rect_to_view(r);
            assert!(v.x >= 0.0 && v.y >= 0.0 && v.x + v.width <= g.view_width());
        }
    }
}
