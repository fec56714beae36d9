//! The server's upload handling keeps memory bounded: `Service::upload_part` writes a part to the
//! blob store (the local filesystem store here) as its body arrives, and the finished upload is
//! joined, hash-checked and stored a chunk at a time — so an upload of many megabytes, in one
//! request or in parts that broke off, never holds itself in memory. Measured with a counting
//! allocator around the whole test process, calling the service directly (hyper's own buffers
//! and the S3 store's multipart path are not part of this measure).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use outpost_protocol as wire;
use outpost_server::blobs::{sha256_hex, WRITE_CHUNK_BYTES};
use outpost_server::service::{Caller, Policy};
use sha2::{Digest, Sha256};
use support::{Backend, DeviceKey, TestServer};

/// The system allocator, counting the bytes allocated now and the most at any moment.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = NOW.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = System.alloc(layout);
        if !block.is_null() {
            grew(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        System.dealloc(block, layout);
        NOW.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = System.realloc(block, layout, new_size);
        if !moved.is_null() {
            NOW.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The upload: 96 MiB.
const SIZE: u64 = 96 * 1024 * 1024;
/// The pieces a client's body arrives in.
const PIECE: u64 = 64 * 1024;
/// The most memory an upload may add, whatever its size: the chunks a streamed write holds
/// (three of [`WRITE_CHUNK_BYTES`]) and room for the rest of the server.
const BOUND: usize = 3 * WRITE_CHUNK_BYTES + 8 * 1024 * 1024;

/// Bytes `at..at + PIECE` (or to the end) of the upload (`at` a multiple of 8): SplitMix64 of
/// each 8-byte word's position, a sequence that does not repeat.
fn piece(at: u64) -> Bytes {
    let length = PIECE.min(SIZE - at) as usize;
    let mut bytes = Vec::with_capacity(length);
    let mut word = at / 8;
    while bytes.len() < length {
        let mut z = word.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        word += 1;
    }
    bytes.truncate(length);
    Bytes::from(bytes)
}

/// The body of a request sending bytes `from..to`, breaking off there with an error if `breaks`.
fn body(from: u64, to: u64, breaks: bool) -> axum::body::Body {
    let pieces = (from..to).step_by(PIECE as usize).map(move |at| {
        let mut bytes = piece(at);
        bytes.truncate((to - at).min(PIECE) as usize);
        Ok::<Bytes, std::io::Error>(bytes)
    });
    let end = breaks.then(|| Err(std::io::Error::other("the connection was reset")));
    axum::body::Body::from_stream(futures_util::stream::iter(pieces.chain(end)))
}

/// Runs `work` and returns what it gave and how much memory it added at its peak.
fn peak_during<T>(server: &TestServer, work: impl std::future::Future<Output = T>) -> (T, usize) {
    let before = NOW.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = server.block_on(work);
    (result, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

#[test]
fn a_large_upload_in_broken_parts_is_received_stored_and_checked_with_bounded_memory() {
    let server = TestServer::start_with(
        Backend::Sqlite,
        Policy {
            max_document_bytes: SIZE as usize,
            ..support::test_policy()
        },
    );
    let user = server.user("vera", wire::Role::Staff, None);
    let token = server.login(&user, &DeviceKey::new(1)).access_token;
    let caller: Caller = server
        .block_on(server.service.authenticate(Some(token.as_str())))
        .expect("the caller");
    let mut hasher = Sha256::new();
    for at in (0..SIZE).step_by(PIECE as usize) {
        hasher.update(piece(at));
    }
    let name = hex::encode(hasher.finalize());
    let service = &server.service;

    // A first request that breaks off after 40 MiB: what arrived is kept.
    let cut = 40 * 1024 * 1024;
    let (first, added) = peak_during(
        &server,
        service.upload_part(&caller, &name, SIZE, 0, body(0, cut, true)),
    );
    assert!(first.is_err(), "a body that broke off is reported");
    assert!(
        added < BOUND,
        "the first part added {added} bytes at its peak"
    );
    let status = server
        .block_on(service.upload_status(&caller, &name, SIZE))
        .expect("status");
    assert_eq!((status.received, status.complete), (cut, false));

    // The rest in one request: received, joined with the first part, checked and stored.
    let (done, added) = peak_during(
        &server,
        service.upload_part(&caller, &name, SIZE, cut, body(cut, SIZE, false)),
    );
    let done = done.expect("the upload completes");
    assert!(done.complete && done.received == SIZE);
    assert!(
        added < BOUND,
        "the last part and the join added {added} bytes at its peak"
    );

    // The stored blob is the uploaded bytes, read back in bounded chunks.
    let blobs = service.blobs();
    let mut stored = Sha256::new();
    let mut chunks = server
        .block_on(blobs.stream_range(&name, 0..SIZE))
        .expect("the blob");
    let mut length = 0u64;
    while let Some(chunk) = server.block_on(chunks.next()) {
        let chunk = chunk.expect("a chunk");
        length += chunk.len() as u64;
        stored.update(&chunk);
    }
    assert_eq!(length, SIZE);
    assert_eq!(hex::encode(stored.finalize()), name);

    // A body longer than the upload's room is refused whole, and bytes that do not hash to the
    // upload's name are discarded once joined: neither becomes a blob.
    let other = sha256_hex(b"another upload");
    let too_long =
        server.block_on(service.upload_part(&caller, &other, PIECE, 0, body(0, 2 * PIECE, false)));
    assert!(too_long.is_err());
    let status =
        server.block_on(service.upload_part(&caller, &other, PIECE, 0, body(0, PIECE, false)));
    assert!(status.is_err(), "bytes of another hash are refused");
    assert!(!server.block_on(blobs.contains(&other)).expect("lookup"));
    assert_eq!(
        server
            .block_on(service.upload_status(&caller, &other, PIECE))
            .expect("status")
            .received,
        0,
        "the refused bytes were discarded"
    );
}
