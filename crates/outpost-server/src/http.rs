//! The HTTP API: axum routes onto [`Service`] operations. Every error leaves as an
//! [`ApiError`](outpost_protocol::ApiError) body with a stable code; server-side failures are
//! logged in full and reported to the client without internals.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use outpost_protocol as wire;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::service::{document_info, Actor, Caller, Service, ServiceError};

/// The largest push accepted (up to 500 operations).
const MAX_PUSH_BYTES: usize = 8 * 1024 * 1024;

/// The largest JSON request body accepted (logins, assignments).
const MAX_JSON_BYTES: usize = 64 * 1024;

/// A failed request, as it leaves the server.
pub struct ApiFailure(ServiceError);

impl From<ServiceError> for ApiFailure {
    fn from(error: ServiceError) -> ApiFailure {
        ApiFailure(error)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let error = self.0;
        let status = match &error {
            ServiceError::InvalidCredentials
            | ServiceError::Unauthenticated
            | ServiceError::TokenExpired
            | ServiceError::DeviceRevoked
            | ServiceError::InvalidRefresh => StatusCode::UNAUTHORIZED,
            ServiceError::AccountLocked { .. } => StatusCode::LOCKED,
            ServiceError::SecondFactorNotEnrolled | ServiceError::Forbidden => {
                StatusCode::FORBIDDEN
            }
            ServiceError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::NotAPdf(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServiceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::CursorAhead { .. } => StatusCode::CONFLICT,
            ServiceError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ServiceError::Store(_)
            | ServiceError::Blob(_)
            | ServiceError::Identity(_)
            | ServiceError::Ca(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status.is_server_error() {
            tracing::error!(error = %error, "request failed");
            "the server could not complete the request; the administrator will find the cause in the server log"
                .to_string()
        } else {
            error.to_string()
        };
        let mut response = (
            status,
            Json(wire::ApiError {
                code: error.code().to_string(),
                message,
            }),
        )
            .into_response();
        if matches!(
            error,
            ServiceError::Unauthenticated | ServiceError::TokenExpired
        ) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"outpost\""),
            );
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiFailure>;

/// A JSON body whose rejections (malformed, wrong type, too large) leave as [`ApiFailure`]s.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(ApiFailure(json_rejection(rejection))),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ServiceError {
    match rejection {
        JsonRejection::BytesRejection(bytes) => bytes_rejection(bytes),
        JsonRejection::MissingJsonContentType(_) => ServiceError::BadRequest(
            "send the body as JSON with Content-Type: application/json".into(),
        ),
        other => {
            ServiceError::BadRequest(format!("the JSON body is invalid: {}", other.body_text()))
        }
    }
}

fn bytes_rejection(rejection: BytesRejection) -> ServiceError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServiceError::TooLarge {
            limit: MAX_JSON_BYTES,
        }
    } else {
        ServiceError::BadRequest(format!(
            "the request body could not be read: {}",
            rejection.body_text()
        ))
    }
}

/// A request body of raw bytes with the same error handling.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|r| ApiFailure(bytes_rejection(r)))
    }
}

/// Query parameters whose rejections leave as [`ApiFailure`]s.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection: QueryRejection| {
                ApiFailure(ServiceError::BadRequest(format!(
                    "the query parameters are invalid: {}",
                    rejection.body_text()
                )))
            })
    }
}

/// The authenticated caller of a request (from `Authorization: Bearer …`).
pub struct Authenticated(pub Caller);

impl FromRequestParts<Arc<Service>> for Authenticated {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        service: &Arc<Service>,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        Ok(Authenticated(service.authenticate(bearer).await?))
    }
}

/// The API's routes over `service`. Serve it with `into_make_service_with_connect_info::<SocketAddr>`
/// so that login throttling sees the client's address.
pub fn router(service: Arc<Service>) -> Router {
    let max_document = service.policy().max_document_bytes;
    Router::new()
        .route(wire::paths::HEALTH, get(health))
        .route(wire::paths::LOGIN, post(login))
        .route(wire::paths::REFRESH, post(refresh))
        .route(wire::paths::LOGOUT, post(logout))
        .route(wire::paths::ME, get(me))
        .route(wire::paths::DOCUMENTS, get(documents))
        .route("/api/v1/documents/{id}", get(document))
        .route("/api/v1/documents/{id}/content", get(document_content))
        .route(wire::paths::ADMIN_ASSIGNMENTS, post(assign))
        .route(wire::paths::ADMIN_ASSIGNMENTS_REVOKE, post(unassign))
        .route(wire::paths::ADMIN_AUDIT, get(audit))
        .route(wire::paths::TRAINING, get(training))
        .route(wire::paths::CERTIFICATES, post(issue_certificate))
        .route(wire::paths::SYNC_PULL, get(pull))
        .route(wire::paths::CA_CERTIFICATE, get(ca_certificate))
        .route(wire::paths::CA_CRL, get(crl))
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
        .layer(middleware::from_fn_with_state(
            MAX_JSON_BYTES,
            refuse_declared_oversize,
        ))
        .merge(
            Router::new()
                .route(wire::paths::SYNC_PUSH, post(push))
                .route(wire::paths::SYNC_AUDIT, post(upload_audit))
                .layer(DefaultBodyLimit::max(MAX_PUSH_BYTES))
                .layer(middleware::from_fn_with_state(
                    MAX_PUSH_BYTES,
                    refuse_declared_oversize,
                )),
        )
        .merge(
            Router::new()
                .route(
                    "/api/v1/sync/uploads/{sha256}",
                    get(upload_status).put(upload_part),
                )
                .layer(DefaultBodyLimit::max(max_document)),
        )
        .merge(
            Router::new()
                .route(wire::paths::ADMIN_DOCUMENTS, post(register_document))
                .layer(DefaultBodyLimit::max(max_document))
                .layer(middleware::from_fn_with_state(
                    max_document,
                    refuse_declared_oversize,
                )),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(log_request))
        .with_state(service)
}

/// How much of an oversized body is read and thrown away before the refusal is sent, so that the
/// client (still sending) receives the 413 instead of a reset connection.
const MAX_DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// Refuses a body whose declared length exceeds `limit` with a 413 — after draining it (up to
/// [`MAX_DRAIN_BYTES`]), because closing a connection with unread data resets it and the client
/// would never see the answer.
async fn refuse_declared_oversize(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            let mut body = request.into_body();
            let mut drained = 0usize;
            while drained < MAX_DRAIN_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |data| data.len()),
                    _ => break,
                }
            }
            ApiFailure(ServiceError::TooLarge { limit }).into_response()
        }
        _ => next.run(request).await,
    }
}

/// Logs each request: method, route template (never the raw path or query, which may carry ids
/// or titles), status and duration. Tokens and bodies are never logged.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        route,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn not_found() -> ApiFailure {
    ApiFailure(ServiceError::NotFound("endpoint"))
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(wire::ApiError {
            code: wire::error_codes::BAD_REQUEST.into(),
            message: "this endpoint does not accept that HTTP method".into(),
        }),
    )
        .into_response()
}

async fn health(State(service): State<Arc<Service>>) -> Json<wire::Health> {
    Json(wire::Health {
        status: "ok".into(),
        protocol_version: wire::PROTOCOL_VERSION,
        server_version: env!("CARGO_PKG_VERSION").into(),
        practice: service.policy().practice,
    })
}

async fn login(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(request): JsonBody<wire::LoginRequest>,
) -> ApiResult<Json<wire::Session>> {
    Ok(Json(service.login(&request, peer.ip()).await?))
}

async fn refresh(
    State(service): State<Arc<Service>>,
    JsonBody(request): JsonBody<wire::RefreshRequest>,
) -> ApiResult<Json<wire::Session>> {
    Ok(Json(service.refresh(&request).await?))
}

async fn logout(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
) -> ApiResult<StatusCode> {
    service.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<wire::UserInfo>> {
    Ok(Json(service.user_info(&caller.user).await?))
}

async fn documents(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<wire::DocumentList>> {
    let documents = service.documents(&caller).await?;
    Ok(Json(wire::DocumentList {
        documents: documents.iter().map(document_info).collect(),
    }))
}

async fn document(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<wire::DocumentInfo>> {
    Ok(Json(document_info(&service.document(&caller, &id).await?)))
}

/// `bytes=FIRST-` or `bytes=FIRST-LAST` (one range; suffix ranges are not needed by clients).
fn parse_range(header_value: &str) -> Option<(u64, Option<u64>)> {
    let spec = header_value.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        text => Some(text.parse().ok()?),
    };
    Some((first, last))
}

async fn document_content(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok());
    let Some(range) = range else {
        let bytes = service.document_content(&caller, &id).await?;
        return Ok((
            [
                (header::CONTENT_TYPE, "application/pdf"),
                (header::ACCEPT_RANGES, "bytes"),
            ],
            bytes,
        )
            .into_response());
    };
    let Some(range) = parse_range(range) else {
        return Err(ServiceError::BadRequest(
            "the Range header must be bytes=FIRST- or bytes=FIRST-LAST".into(),
        )
        .into());
    };
    match service.document_content_range(&caller, &id, range).await {
        // Streamed as it is read: the server holds a chunk or two of each download, not the
        // range.
        Ok((bytes, first, last, size)) => Ok((
            StatusCode::PARTIAL_CONTENT,
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_RANGE,
                    format!("bytes {first}-{last}/{size}"),
                ),
                (header::CONTENT_LENGTH, (last - first + 1).to_string()),
                (header::ACCEPT_RANGES, "bytes".to_string()),
            ],
            axum::body::Body::from_stream(bytes),
        )
            .into_response()),
        Err(ServiceError::RangeNotSatisfiable { size }) => {
            let mut response =
                ApiFailure(ServiceError::RangeNotSatisfiable { size }).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            Ok(response)
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
struct PullParams {
    #[serde(default)]
    cursor: i64,
    after: Option<String>,
    #[serde(default = "default_pull_limit")]
    limit: i64,
}

fn default_pull_limit() -> i64 {
    200
}

async fn pull(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<PullParams>,
) -> ApiResult<Json<wire::PullPage>> {
    Ok(Json(
        service
            .pull(
                &caller,
                params.cursor,
                params.after.as_deref(),
                params.limit,
            )
            .await?,
    ))
}

#[derive(Deserialize)]
struct RegisterParams {
    title: String,
    #[serde(default = "default_classification")]
    classification: String,
}

fn default_classification() -> String {
    "internal".into()
}

async fn register_document(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<RegisterParams>,
    body: Result<RawBody, ApiFailure>,
) -> ApiResult<(StatusCode, Json<wire::DocumentInfo>)> {
    Service::require_admin(&caller)?;
    let RawBody(bytes) = body.map_err(|failure| match failure.0 {
        ServiceError::TooLarge { .. } => ApiFailure(ServiceError::TooLarge {
            limit: service.policy().max_document_bytes,
        }),
        other => ApiFailure(other),
    })?;
    let document = service
        .register_document(
            Actor::User(&caller),
            &params.title,
            &params.classification,
            bytes,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(document_info(&document))))
}

async fn assign(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<wire::AssignmentRequest>,
) -> ApiResult<(StatusCode, Json<wire::AssignmentInfo>)> {
    Service::require_admin(&caller)?;
    let assignment = service
        .assign(Actor::User(&caller), &request.document_id, &request.target)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(wire::AssignmentInfo {
            id: assignment.id,
            document_id: assignment.document_id,
            target: request.target,
            assigned_at: assignment.assigned_at,
        }),
    ))
}

async fn unassign(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<wire::AssignmentRequest>,
) -> ApiResult<StatusCode> {
    Service::require_admin(&caller)?;
    service
        .revoke_assignment(Actor::User(&caller), &request.document_id, &request.target)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AuditParams {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_audit_limit")]
    limit: i64,
}

fn default_audit_limit() -> i64 {
    100
}

async fn training(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Json<wire::TrainingOverview>> {
    Ok(Json(service.training_overview(Some(&caller)).await?))
}

async fn audit(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<AuditParams>,
) -> ApiResult<Json<wire::AuditList>> {
    Service::require_admin(&caller)?;
    let rows = service.audit_records(params.after, params.limit).await?;
    Ok(Json(wire::AuditList {
        records: rows
            .into_iter()
            .map(|row| wire::AuditRecord {
                seq: row.seq,
                at: row.record.at,
                actor: row.record.actor,
                action: row.record.action,
                subject: row.record.subject,
                detail: row.record.detail,
            })
            .collect(),
    }))
}

async fn issue_certificate(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<wire::CertificateRequest>,
) -> ApiResult<(StatusCode, Json<wire::CertificateIssued>)> {
    let csr = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(request.csr.trim_end_matches('='))
        .map_err(|_| ServiceError::BadRequest("the certificate request is not base64url".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(service.issue_certificate(&caller, &csr).await?),
    ))
}

async fn ca_certificate(State(service): State<Arc<Service>>) -> ApiResult<Response> {
    let der = service.ca_certificate()?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response())
}

async fn crl(State(service): State<Arc<Service>>) -> ApiResult<Response> {
    let der = service.crl().await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

/// A push, once received, runs to its end on a task of its own: a workstation that goes away
/// mid-request (a dropped connection, a killed process) must not cut the server's work between
/// applying an operation and what follows it (its audit record, the long-term extension). The
/// workstation learns the outcome when it pushes the same operation again.
async fn push(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<wire::PushRequest>,
) -> ApiResult<Json<wire::PushResponse>> {
    let response = tokio::spawn(async move { service.push(&caller, &request).await })
        .await
        .map_err(|e| ServiceError::Unavailable(format!("the push stopped: {e}")))??;
    Ok(Json(response))
}

async fn upload_audit(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    JsonBody(upload): JsonBody<wire::AuditUpload>,
) -> ApiResult<Json<wire::AuditUploadResult>> {
    Ok(Json(service.upload_audit(&caller, &upload).await?))
}

/// The query of an upload's status.
#[derive(Deserialize)]
struct UploadQuery {
    size: u64,
    #[serde(default)]
    offset: u64,
}

async fn upload_status(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    Path(sha256): Path<String>,
    QueryParams(query): QueryParams<UploadQuery>,
) -> ApiResult<Json<wire::UploadStatus>> {
    Ok(Json(
        service.upload_status(&caller, &sha256, query.size).await?,
    ))
}

async fn upload_part(
    State(service): State<Arc<Service>>,
    Authenticated(caller): Authenticated,
    Path(sha256): Path<String>,
    QueryParams(query): QueryParams<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<Json<wire::UploadStatus>> {
    Ok(Json(
        service
            .upload_part(&caller, &sha256, query.size, query.offset, body)
            .await?,
    ))
}
