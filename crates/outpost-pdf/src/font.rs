//! A TrueType font embedded whole as a composite (Type0, Identity-H) font, so appearance streams
//! can show any text the font covers (Cyrillic and Latin with DejaVu Sans) and readers can copy it
//! back out through the `/ToUnicode` map.

use std::collections::BTreeMap;
use std::path::Path;

use lopdf::{dictionary, Document, Object, ObjectId, Stream};

use crate::PdfError;

/// A parsed font ready to lay out text and to be written into a PDF.
pub(crate) struct EmbeddedFont {
    data: Vec<u8>,
    units_per_em: f32,
    ascender: f32,
    descender: f32,
    bbox: [i16; 4],
    /// Glyph id and advance (1/1000 em) for every character laid out so far.
    used: BTreeMap<char, (u16, u16)>,
}

/// One laid-out line: glyph ids and its width in 1/1000 em.
pub(crate) struct GlyphRun {
    pub glyphs: Vec<u16>,
}

impl EmbeddedFont {
    /// Reads a TrueType file.
    pub(crate) fn load(path: &Path) -> Result<Self, PdfError> {
        let data = std::fs::read(path).map_err(|_| PdfError::FontMissing {
            path: path.to_owned(),
        })?;
        let face = ttf_parser::Face::parse(&data, 0).map_err(|e| {
            PdfError::Engine(format!("the font {} is unusable: {e}", path.display()))
        })?;
        let units_per_em = f32::from(face.units_per_em());
        let b = face.global_bounding_box();
        let scale = |v: i16| (f32::from(v) * 1000.0 / units_per_em) as i16;
        let ascender = f32::from(face.ascender()) * 1000.0 / units_per_em;
        let descender = f32::from(face.descender()) * 1000.0 / units_per_em;
        let bbox = [
            scale(b.x_min),
            scale(b.y_min),
            scale(b.x_max),
            scale(b.y_max),
        ];
        Ok(Self {
            data,
            units_per_em,
            ascender,
            descender,
            bbox,
            used: BTreeMap::new(),
        })
    }

    /// Ascender height in 1/1000 em.
    pub(crate) fn ascender(&self) -> f32 {
        self.ascender
    }

    /// The glyph id and advance of `c` (a missing glyph maps to glyph 0, the font's ".notdef").
    fn glyph(&mut self, c: char) -> (u16, u16) {
        if let Some(found) = self.used.get(&c) {
            return *found;
        }
        // The font bytes parsed once already in `load`, so this parse cannot fail differently.
        let found = match ttf_parser::Face::parse(&self.data, 0) {
            Ok(face) => {
                let gid = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
                let advance = face.glyph_hor_advance(gid).unwrap_or(0);
                (
                    gid.0,
                    (f32::from(advance) * 1000.0 / self.units_per_em).round() as u16,
                )
            }
            Err(_) => (0, 0),
        };
        self.used.insert(c, found);
        found
    }

    /// Breaks `text` into lines no wider than `max_width` points at `size` points, breaking at
    /// spaces where it can and inside long words where it must; honours the text's own newlines.
    pub(crate) fn wrap(&mut self, text: &str, size: f32, max_width: f32) -> Vec<GlyphRun> {
        let limit = (max_width.max(size) * 1000.0 / size) as u32;
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line: Vec<u16> = Vec::new();
            let mut width = 0u32;
            for word in paragraph.split(' ') {
                let glyphs: Vec<(u16, u16)> = word.chars().map(|c| self.glyph(c)).collect();
                let word_width: u32 = glyphs.iter().map(|g| u32::from(g.1)).sum();
                let space = self.glyph(' ');
                let needed = if line.is_empty() {
                    word_width
                } else {
                    word_width + u32::from(space.1)
                };
                if !line.is_empty() && width + needed > limit {
                    lines.push(GlyphRun {
                        glyphs: std::mem::take(&mut line),
                    });
                    width = 0;
                }
                if !line.is_empty() {
                    line.push(space.0);
                    width += u32::from(space.1);
                }
                for (gid, advance) in glyphs {
                    if !line.is_empty() && width + u32::from(advance) > limit {
                        lines.push(GlyphRun {
                            glyphs: std::mem::take(&mut line),
                        });
                        width = 0;
                    }
                    line.push(gid);
                    width += u32::from(advance);
                }
            }
            lines.push(GlyphRun { glyphs: line });
        }
        lines
    }

    /// Writes the font (file, descriptor, CID font, ToUnicode map) into `document`, the Type0
    /// font itself under `type0_id` (reserved before the text that uses it was laid out).
    /// Call after every text has been laid out.
    pub(crate) fn write(
        &self,
        document: &mut Document,
        type0_id: ObjectId,
    ) -> Result<(), PdfError> {
        let mut file = Stream::new(
            dictionary! { "Length1" => self.data.len() as i64 },
            self.data.clone(),
        );
        file.compress()
            .map_err(|e| PdfError::Engine(format!("compressing the font failed: {e}")))?;
        let file_id = document.add_object(file);
        let descriptor_id = document.add_object(dictionary! {
            "Type" => "FontDescriptor",
            "FontName" => "DejaVuSans",
            "Flags" => 32,
            "FontBBox" => self.bbox.iter().map(|v| Object::Integer(i64::from(*v))).collect::<Vec<_>>(),
            "ItalicAngle" => 0,
            "Ascent" => self.ascender as i64,
            "Descent" => self.descender as i64,
            "CapHeight" => self.ascender as i64,
            "StemV" => 80,
            "FontFile2" => file_id,
        });
        let mut widths = Vec::new();
        let mut by_glyph: BTreeMap<u16, (char, u16)> = BTreeMap::new();
        for (c, (gid, advance)) in &self.used {
            by_glyph.entry(*gid).or_insert((*c, *advance));
        }
        for (gid, (_, advance)) in &by_glyph {
            widths.push(Object::Integer(i64::from(*gid)));
            widths.push(Object::Array(vec![Object::Integer(i64::from(*advance))]));
        }
        let cid_font_id = document.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "CIDFontType2",
            "BaseFont" => "DejaVuSans",
            "CIDSystemInfo" => dictionary! {
                "Registry" => Object::string_literal("Adobe"),
                "Ordering" => Object::string_literal("Identity"),
                "Supplement" => 0,
            },
            "FontDescriptor" => descriptor_id,
            "DW" => 1000,
            "W" => widths,
            "CIDToGIDMap" => "Identity",
        });
        let to_unicode_id = document.add_object(Stream::new(
            dictionary! {},
            to_unicode_cmap(&by_glyph).into_bytes(),
        ));
        document.set_object(
            type0_id,
            dictionary! {
                "Type" => "Font",
                "Subtype" => "Type0",
                "BaseFont" => "DejaVuSans",
                "Encoding" => "Identity-H",
                "DescendantFonts" => vec![Object::Reference(cid_font_id)],
                "ToUnicode" => to_unicode_id,
            },
        );
        Ok(())
    }
}

/// A `/ToUnicode` CMap mapping each used glyph id back to its character.
fn to_unicode_cmap(by_glyph: &BTreeMap<u16, (char, u16)>) -> String {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<_> = by_glyph.iter().filter(|(gid, _)| **gid != 0).collect();
    for chunk in entries.chunks(100) {
        cmap.push_str(&format!("{} beginbfchar\n", chunk.len()));
        for (gid, (c, _)) in chunk {
            let mut units = [0u16; 2];
            let hex: String = c
                .encode_utf16(&mut units)
                .iter()
                .map(|u| format!("{u:04X}"))
                .collect();
            cmap.push_str(&format!("<{gid:04X}> <{hex}>\n"));
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    cmap
}
