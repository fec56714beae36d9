//! The blob store on the local filesystem and on a real S3 server: content addressing, dedupe,
//! verification on read, and names that cannot become paths.

mod support;

use bytes::Bytes;
use futures_util::TryStreamExt;
use outpost_server::blobs::{sha256_hex, BlobError, BlobStore, STREAM_CHUNK_BYTES};
use support::s3::{S3Server, ACCESS_KEY, SECRET_KEY};

/// Runs the blob contract; `damage` overwrites the stored bytes of a blob by its object key;
/// `chunk_bound` is the most bytes a streamed range may hand over at once.
async fn contract(blobs: BlobStore, damage: impl Fn(&str), chunk_bound: u64) {
    let pdf = Bytes::from(support::sample_pdf("Blob contract"));
    let name = blobs.put(pdf.clone()).await.expect("put");
    assert_eq!(name, sha256_hex(&pdf));
    assert_eq!(
        blobs.put(pdf.clone()).await.expect("put again"),
        name,
        "the same bytes, the same blob"
    );
    assert!(blobs.contains(&name).await.expect("contains"));
    assert_eq!(blobs.get(&name).await.expect("get"), pdf);
    let absent = sha256_hex(b"never stored");
    assert!(!blobs.contains(&absent).await.expect("contains"));
    assert!(matches!(
        blobs.get(&absent).await,
        Err(BlobError::Missing(_))
    ));
    for bad in [
        "../../etc/passwd",
        "ABCDEF",
        &"g".repeat(64),
        &name.to_uppercase(),
    ] {
        assert!(
            matches!(blobs.get(bad).await, Err(BlobError::BadName(_))),
            "{bad}"
        );
    }
    // Bytes changed behind the store's back are refused, not served.
    damage(&format!("sha256/{}/{}", &name[..2], name));
    assert!(matches!(blobs.get(&name).await, Err(BlobError::Damaged(_))));
    // A large blob round-trips whole.
    let large = Bytes::from(
        (0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let large_name = blobs.put(large.clone()).await.expect("put large");
    assert_eq!(blobs.get(&large_name).await.expect("get large"), large);
    // Ranges (what a resumed download asks for) come as a stream of bounded chunks: the whole,
    // from inside a chunk to the end, within one chunk, across a chunk boundary, the last byte.
    let size = large.len() as u64;
    let chunk = STREAM_CHUNK_BYTES;
    for range in [
        0..size,
        chunk + 17..size,
        5..chunk - 5,
        chunk - 3..chunk + 3,
        size - 1..size,
    ] {
        let chunks: Vec<Bytes> = blobs
            .stream_range(&large_name, range.clone())
            .await
            .expect("stream")
            .try_collect()
            .await
            .expect("read the stream");
        assert!(
            chunks.iter().all(|c| c.len() as u64 <= chunk_bound),
            "{range:?}: a chunk of {} bytes",
            chunks.iter().map(Bytes::len).max().unwrap_or(0)
        );
        let joined: Vec<u8> = chunks.concat();
        assert!(
            joined == large[range.start as usize..range.end as usize],
            "{range:?}: other bytes than stored"
        );
    }
    // A range past the end of what is stored (a blob shorter than its record) is refused, and
    // nothing is streamed.
    assert!(matches!(
        blobs.stream_range(&large_name, size - 10..size + 10).await,
        Err(BlobError::Damaged(_))
    ));
    assert!(matches!(
        blobs.stream_range(&absent, 0..10).await,
        Err(BlobError::Missing(_))
    ));
}

#[test]
fn blobs_on_the_local_filesystem() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("blobs");
    let blobs = BlobStore::local(&root).expect("local store");
    support::runtime().block_on(contract(
        blobs,
        |key| std::fs::write(root.join(key), b"tampered").expect("damage"),
        STREAM_CHUNK_BYTES,
    ));
}

#[test]
fn blobs_on_an_s3_server() {
    let s3 = S3Server::start();
    let blobs = BlobStore::s3_with_credentials(&s3.url(), Some((ACCESS_KEY, SECRET_KEY)))
        .expect("S3 store");
    // From S3 a range comes as the HTTP client reads it: hyper buffers at most ~408 KiB.
    support::runtime().block_on(contract(
        blobs,
        |key| std::fs::write(s3.object_file(key), b"tampered").expect("damage"),
        512 * 1024,
    ));
}

#[test]
fn s3_with_wrong_credentials_fails_with_a_clear_error() {
    let s3 = S3Server::start();
    let blobs = BlobStore::s3_with_credentials(&s3.url(), Some((ACCESS_KEY, "wrong-secret")))
        .expect("S3 store");
    let error = support::runtime()
        .block_on(blobs.put(Bytes::from_static(b"%PDF-1.7")))
        .expect_err("refused");
    assert!(matches!(error, BlobError::Store { .. }), "{error:?}");
    assert!(error.to_string().contains("S3 bucket"), "{error}");
    for url in ["s3://", "s3://a/b", "s3://bucket?nonsense=1", "gs://bucket"] {
        assert!(
            matches!(BlobStore::s3(url), Err(BlobError::BadUrl(_))),
            "{url}"
        );
    }
}
