//! Annotating through the engine: records that survive closing the vault, undo and redo, the
//! audit chain, the audited export judged by pypdf, the viewer's page cache, and view space.

mod common;
#[path = "../../outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

use common::*;
use outpost_workstation::{
    AnnotationDraft, AnnotationEdit, AnnotationKind, AnnotationStyle, Colour, DocumentId, Geometry,
    Language, Point, SampleKind, Session, ViewDraft, ViewRect, ViewShape, WorkstationError,
};

fn import(session: &Session, pages: u32) -> DocumentId {
    import_keeping_bytes(session, pages).0
}

/// Imports a generated record; returns its id and the bytes imported.
fn import_keeping_bytes(session: &Session, pages: u32) -> (DocumentId, Vec<u8>) {
    let bytes = sample(
        SampleKind::PersonnelRecord,
        Language::Russian,
        pages,
        3,
        None,
    );
    let id = session
        .import_bytes(bytes.clone(), "record.pdf")
        .unwrap()
        .document()
        .id
        .clone();
    (id, bytes)
}

/// A highlight over the first three words of page 1, chosen through the text layer.
fn highlight_draft(session: &Session, doc: &DocumentId) -> AnnotationDraft {
    let text = session.page_text(doc, 1).unwrap();
    AnnotationDraft {
        kind: AnnotationKind::Highlight,
        page: 1,
        geometry: Geometry::Quads {
            quads: text.selection_quads(0, 2),
        },
        style: AnnotationStyle {
            contents: text.selected_text(0, 2),
            ..Default::default()
        },
    }
}

fn note_draft(page: u32, contents: &str) -> AnnotationDraft {
    AnnotationDraft {
        kind: AnnotationKind::Note,
        page,
        geometry: Geometry::Icon {
            at: Point { x: 500.0, y: 800.0 },
        },
        style: AnnotationStyle {
            contents: contents.into(),
            ..Default::default()
        },
    }
}

fn ink_draft() -> AnnotationDraft {
    AnnotationDraft {
        kind: AnnotationKind::Ink,
        page: 2,
        geometry: Geometry::Strokes {
            strokes: vec![vec![
                Point { x: 100.0, y: 100.0 },
                Point { x: 150.0, y: 130.0 },
            ]],
        },
        style: AnnotationStyle {
            colour: Some(Colour { r: 0, g: 0, b: 200 }),
            line_width: Some(3.0),
            ..Default::default()
        },
    }
}

fn contents_of(session: &Session, doc: &DocumentId) -> Vec<(AnnotationKind, String, i64)> {
    session
        .annotations(doc)
        .unwrap()
        .into_iter()
        .map(|a| (a.annotation.kind, a.annotation.contents, a.revision))
        .collect()
}

#[test]
fn created_edited_deleted_and_undone_annotations_survive_closing_the_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "annot-persist");
    let session = new_session(&ws, "olga", "pw-olga", 61);
    let doc = import(&session, 3);

    let highlight = session
        .create_annotation(&doc, highlight_draft(&session, &doc))
        .unwrap();
    assert_eq!(highlight.annotation.author, "olga");
    assert_eq!(highlight.annotation.colour, Colour::YELLOW);
    assert!(!highlight.annotation.contents.is_empty());
    clock.advance(1_000);
    let note = session
        .create_annotation(&doc, note_draft(1, "первая версия"))
        .unwrap();
    let ink = session.create_annotation(&doc, ink_draft()).unwrap();
    clock.advance(1_000);
    let edited = session
        .edit_annotation(
            &note.annotation.id.to_string(),
            note.revision,
            AnnotationEdit {
                contents: Some("проверено".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(edited.revision, 2);
    assert_eq!(edited.annotation.created_ms, note.annotation.created_ms);
    assert!(edited.annotation.modified_ms > note.annotation.modified_ms);
    session
        .delete_annotation(&ink.annotation.id.to_string(), ink.revision)
        .unwrap();
    assert_eq!(
        session.annotations(&doc).unwrap().len(),
        2,
        "the ink is gone"
    );
    session.undo_annotation(&doc).unwrap();
    assert_eq!(
        session.annotations(&doc).unwrap().len(),
        3,
        "undo brought it back"
    );

    let before = contents_of(&session, &doc);
    session.lock().unwrap();
    let session = ws.unlock("olga", "pw-olga", rng(62)).unwrap();
    assert_eq!(contents_of(&session, &doc), before);
    let kinds: Vec<AnnotationKind> = before.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            AnnotationKind::Highlight,
            AnnotationKind::Note,
            AnnotationKind::Ink
        ],
        "page order, then creation order"
    );
    assert_eq!(before[1].1, "проверено");
    assert_eq!(before[2].2, 3, "ink: created, deleted, restored");

    // A new session has no history of the old one's changes.
    assert!(matches!(
        session.undo_annotation(&doc),
        Err(WorkstationError::NothingToUndo)
    ));
}

#[test]
fn undo_and_redo_walk_through_the_users_recent_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "annot-undo");
    let session = new_session(&ws, "ivan", "pw-ivan", 63);
    let doc = import(&session, 2);

    let note = session
        .create_annotation(&doc, note_draft(2, "draft"))
        .unwrap();
    let id = note.annotation.id.to_string();
    session
        .edit_annotation(
            &id,
            1,
            AnnotationEdit {
                contents: Some("final".into()),
                colour: Some(Colour::RED),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        session.undo_annotation(&doc).unwrap(),
        "undid: edited note on page 2"
    );
    assert_eq!(contents_of(&session, &doc)[0].1, "draft");
    assert_eq!(
        session.annotations(&doc).unwrap()[0].annotation.colour,
        Colour::YELLOW
    );
    assert_eq!(
        session.undo_annotation(&doc).unwrap(),
        "undid: created note on page 2"
    );
    assert!(session.annotations(&doc).unwrap().is_empty());
    assert!(matches!(
        session.undo_annotation(&doc),
        Err(WorkstationError::NothingToUndo)
    ));
    session.redo_annotation(&doc).unwrap();
    assert_eq!(contents_of(&session, &doc)[0].1, "draft");
    session.redo_annotation(&doc).unwrap();
    assert_eq!(
        contents_of(&session, &doc),
        // Revisions: created 1, edited 2, two undos 3 and 4, two redos 5 and 6.
        vec![(AnnotationKind::Note, "final".into(), 6)]
    );
    assert!(matches!(
        session.redo_annotation(&doc),
        Err(WorkstationError::NothingToRedo)
    ));

    // A new change after an undo drops what could have been redone.
    session.undo_annotation(&doc).unwrap();
    session
        .create_annotation(&doc, note_draft(1, "another"))
        .unwrap();
    assert!(matches!(
        session.redo_annotation(&doc),
        Err(WorkstationError::NothingToRedo)
    ));
    // Other documents keep their own history.
    let other = import(&session, 1);
    assert!(matches!(
        session.undo_annotation(&other),
        Err(WorkstationError::NothingToUndo)
    ));
}

#[test]
fn a_change_based_on_an_old_revision_is_refused_and_bad_drafts_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "annot-stale");
    let session = new_session(&ws, "pavel", "pw-pavel", 64);
    let doc = import(&session, 1);
    let note = session
        .create_annotation(&doc, note_draft(1, "v1"))
        .unwrap();
    let id = note.annotation.id.to_string();
    let edit = |text: &str| AnnotationEdit {
        contents: Some(text.into()),
        ..Default::default()
    };
    session.edit_annotation(&id, 1, edit("v2")).unwrap();
    let stale = session
        .edit_annotation(&id, 1, edit("v2 from an old screen"))
        .unwrap_err();
    assert_eq!(stale.code(), "annotation_changed", "{stale}");
    assert_eq!(contents_of(&session, &doc)[0].1, "v2");

    let beyond = session
        .create_annotation(&doc, note_draft(2, "no page 2"))
        .unwrap_err();
    assert_eq!(beyond.code(), "page_out_of_range");
    let mut nan = ink_draft();
    nan.page = 1;
    nan.geometry = Geometry::Strokes {
        strokes: vec![vec![Point {
            x: f32::NAN,
            y: 1.0,
        }]],
    };
    assert_eq!(
        session.create_annotation(&doc, nan).unwrap_err().code(),
        "invalid_annotation"
    );
    let missing = session.delete_annotation("no-such-id", 1).unwrap_err();
    assert_eq!(missing.code(), "annotation_not_found");
    assert_eq!(session.annotations(&doc).unwrap().len(), 1);
}

#[test]
fn every_change_and_every_export_is_in_the_audit_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "annot-audit");
    let session = new_session(&ws, "lena", "pw-lena", 65);
    let (doc, original) = import_keeping_bytes(&session, 2);

    session
        .create_annotation(&doc, highlight_draft(&session, &doc))
        .unwrap();
    session.create_annotation(&doc, ink_draft()).unwrap();
    let note = session
        .create_annotation(&doc, note_draft(1, "Согласовано"))
        .unwrap();
    session
        .delete_annotation(&note.annotation.id.to_string(), note.revision)
        .unwrap();
    session.undo_annotation(&doc).unwrap();

    let out = tmp.path().join("export");
    std::fs::create_dir(&out).unwrap();
    let target = out.join("record-annotated.pdf");
    let report = session.export_with_annotations(&doc, &target).unwrap();
    assert_eq!(report.annotations, 3);
    let written = std::fs::read(&target).unwrap();
    assert!(
        written.starts_with(&original),
        "the original is a prefix of the export"
    );
    assert_eq!(sha256_hex(&written), report.sha256);
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "no partial file is left beside the export"
    );
    let judged = judges::pypdf_annotations(&target);
    let subtypes: Vec<&str> = judged
        .iter()
        .map(|a| a["subtype"].as_str().unwrap())
        .collect();
    assert_eq!(subtypes, vec!["Highlight", "Text", "Ink"]);
    assert_eq!(judged[1]["contents"], "Согласовано");
    assert_eq!(judged[1]["author"], "lena");

    // Exports never overwrite; the refusal is audited too.
    let again = session.export_with_annotations(&doc, &target).unwrap_err();
    assert_eq!(again.code(), "export_target_exists");
    assert_eq!(std::fs::read(&target).unwrap(), written);

    let entries = session.audit_entries(0, 1000).unwrap();
    let annotate: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "annotate")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(annotate.len(), 5, "{annotate:?}");
    assert!(
        annotate[3].starts_with("deleted note on page 1"),
        "{annotate:?}"
    );
    assert!(
        annotate[4].starts_with("undid: deleted note on page 1"),
        "{annotate:?}"
    );
    let exports: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.action == "export")
        .map(|e| (e.outcome.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(exports.len(), 2);
    assert_eq!(exports[0].0, "success");
    assert!(exports[0].1.contains(&report.sha256));
    assert_eq!(exports[1].0, "failure");
    assert!(session.verify_audit_chain().unwrap().first_broken.is_none());
}

#[test]
fn the_viewer_caches_pages_in_memory_and_drops_renders_scrolled_past() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "viewer");
    let session = new_session(&ws, "yuri", "pw-yuri", 66);
    let doc = import(&session, 12);
    let view = session.view_document(&doc).unwrap();
    assert_eq!(view.page_sizes.len(), 12);
    assert!((view.page_sizes[0].0 - 595.0).abs() < 1.0);

    let first = session.render_page(&doc, 1, 400).unwrap();
    let again = session.render_page(&doc, 1, 400).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "the second request is served from memory"
    );
    assert_eq!(session.render_cache_bytes(), first.png.len());

    session.set_visible_pages(&doc, 8, 9);
    let passed = session.render_page(&doc, 2, 400).unwrap_err();
    assert_eq!(passed.code(), "no_longer_wanted");
    session.render_page(&doc, 10, 400).unwrap();
    session.render_page(&doc, 6, 400).unwrap();

    session.close_view(&doc);
    assert_eq!(session.render_cache_bytes(), 0);
    // Nothing rendered reached the disk: the data folder holds only the vault's own files.
    let names: Vec<String> = files_under(tmp.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".png")),
        "rendered pages on disk: {names:?}"
    );
}

#[test]
fn what_the_user_points_at_on_a_rotated_page_is_where_the_annotation_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, _clock) = workstation(tmp.path(), "overlay");
    let session = new_session(&ws, "nina", "pw-nina", 67);
    let upright = sample(SampleKind::OperationalReport, Language::English, 1, 4, None);
    let source = tmp.path().join("upright.pdf");
    let rotated_path = tmp.path().join("rotated.pdf");
    std::fs::write(&source, &upright).unwrap();
    let qpdf = std::process::Command::new("qpdf")
        .args(["--rotate=+90:1"])
        .arg(&source)
        .arg(&rotated_path)
        .status()
        .expect("qpdf (run scripts/install-deps.sh)");
    assert!(qpdf.success());
    let doc = session
        .import_bytes(std::fs::read(&rotated_path).unwrap(), "rotated.pdf")
        .unwrap()
        .document()
        .id
        .clone();

    let text = session.page_text_view(&doc, 1).unwrap();
    assert!(
        text.width > text.height,
        "an A4 page turned 90° is landscape"
    );
    // The first word is seen near the top-right corner of the turned page.
    let first = &text.words[0];
    assert!(
        first.rect.x > text.width / 2.0 && first.rect.y < text.height / 2.0,
        "{first:?}"
    );
    assert!(
        first.rect.height > first.rect.width,
        "turned text is taller than wide"
    );

    let boxed = ViewRect {
        x: 100.0,
        y: 200.0,
        width: 150.0,
        height: 80.0,
    };
    session
        .create_annotation_in_view(
            &doc,
            ViewDraft {
                kind: AnnotationKind::Rectangle,
                page: 1,
                shape: ViewShape::Box { rect: boxed },
                style: AnnotationStyle {
                    contents: "box".into(),
                    ..Default::default()
                },
            },
        )
        .unwrap();
    let hit_words = session
        .find_on_page(&doc, 1, &first.text.to_lowercase())
        .unwrap();
    assert!(hit_words.contains(&0), "search marks the word it found");
    session
        .create_annotation_in_view(
            &doc,
            ViewDraft {
                kind: AnnotationKind::Highlight,
                page: 1,
                shape: ViewShape::Words { first: 0, last: 1 },
                style: AnnotationStyle {
                    ..Default::default()
                },
            },
        )
        .unwrap();

    let shown = session.annotations_in_view(&doc).unwrap();
    assert_eq!(shown.len(), 2);
    let r = shown[0].rects[0];
    for (got, want) in [
        (r.x, boxed.x),
        (r.y, boxed.y),
        (r.width, boxed.width),
        (r.height, boxed.height),
    ] {
        assert!((got - want).abs() < 0.01, "{r:?} != {boxed:?}");
    }
    let highlight = &shown[1];
    assert_eq!(
        highlight.contents,
        format!("{} {}", text.words[0].text, text.words[1].text)
    );
    let over_first_word = highlight.rects[0];
    assert!(
        (over_first_word.y - first.rect.y).abs() < 0.5
            && (over_first_word.x + over_first_word.width - first.rect.x - first.rect.width).abs()
                < 0.5
    );
}
