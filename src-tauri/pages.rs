//! Rendered pages reach the web view as raw PNG bytes over a custom URI scheme
//! (`outpost-page://localhost/DOCUMENT/PAGE?width=W`, `&thumbnail=1` for the page strip), never as
//! base64 inside JSON.

use tauri::http::{Request, Response, StatusCode};
use tauri::{Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use outpost_workstation::DocumentId;

use crate::state::AppState;

/// The scheme's name.
pub const SCHEME: &str = "outpost-page";

fn plain(status: StatusCode, text: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(text.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Serves one page image, rendering on a worker thread.
pub fn serve<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let session = ctx.app_handle().state::<AppState>().session();
    let uri = request.uri().clone();
    std::thread::spawn(move || {
        let Some(session) = session else {
            return responder.respond(plain(StatusCode::FORBIDDEN, "the vault is locked"));
        };
        let mut parts = uri.path().trim_matches('/').split('/');
        let (Some(doc), Some(page)) = (
            parts.next(),
            parts.next().and_then(|p| p.parse::<u32>().ok()),
        ) else {
            return responder.respond(plain(StatusCode::BAD_REQUEST, "expected /DOCUMENT/PAGE"));
        };
        let width = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("width=")))
            .and_then(|w| w.parse::<u32>().ok())
            .unwrap_or(900);
        let thumbnail = uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "thumbnail=1"));
        let document = DocumentId(doc.to_owned());
        let rendered = if thumbnail {
            session.render_thumbnail(&document, page, width)
        } else {
            session.render_page(&document, page, width)
        };
        match rendered {
            Ok(rendered) => responder.respond(
                Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", "image/png")
                    .header("Cache-Control", "no-store")
                    .body(rendered.png.clone())
                    .unwrap_or_default(),
            ),
            // Scrolled past while it waited: the viewer asks again if the page comes back.
            Err(e) if e.code() == "no_longer_wanted" => {
                responder.respond(plain(StatusCode::CONFLICT, &e.to_string()))
            }
            Err(e) => responder.respond(plain(StatusCode::NOT_FOUND, &e.to_string())),
        }
    });
}
