//! Shared by the PDF tests: the engine, sample documents, and the third-party tools that judge
//! what we write (pypdf, MuPDF, qpdf, poppler, pyHanko).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outpost_pdf::{
    Annotation, AnnotationKind, Colour, Geometry, Language, PdfEngine, Point, Quad, Rect,
    SampleKind, SampleSpec,
};
use uuid::Uuid;

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The process's PDF engine.
pub fn engine() -> PdfEngine {
    PdfEngine::start_default().expect("pdfium must be installed: run scripts/install-deps.sh")
}

/// A generated text document.
pub fn sample(language: Language, pages: u32) -> Vec<u8> {
    engine()
        .write_sample(&SampleSpec {
            kind: SampleKind::PersonnelRecord,
            language,
            pages,
            seed: 42,
            marker: None,
        })
        .expect("sample document")
}

/// The Python with pypdf and pyHanko (the venv the setup command makes).
pub fn python() -> PathBuf {
    std::env::var_os("OUTPOST_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME");
            PathBuf::from(home).join(".cache/outpost/venv/bin/python")
        })
}

/// A program installed beside the test Python (pyhanko).
pub fn venv_program(name: &str) -> PathBuf {
    python().with_file_name(name)
}

/// Runs a command and returns its output; panics with its stderr when it cannot start.
pub fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?}: {e} (run scripts/install-deps.sh)"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&dyn AsRef<std::ffi::OsStr>],
) -> String {
    let output = run(&program, args);
    assert!(
        output.status.success(),
        "{:?} failed: {}\n{}",
        program.as_ref(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn judges_dir() -> PathBuf {
    // Both crates that include this file sit in crates/, so this finds outpost-pdf's judges.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../outpost-pdf/tests/judges")
}

/// The annotations pypdf finds in `pdf`.
pub fn pypdf_annotations(pdf: &Path) -> Vec<serde_json::Value> {
    let out = run_ok(
        python(),
        &[&judges_dir().join("annotations_pypdf.py"), &pdf],
    );
    serde_json::from_str(out.trim()).expect("pypdf judge prints JSON")
}

/// What pyHanko reads from each signature of `pdf` (field, filters, signed attributes, reason,
/// name, /M, DocMDP level, algorithms, number of embedded certificates).
pub fn signature_facts(pdf: &Path) -> Vec<serde_json::Value> {
    let out = run_ok(python(), &[&judges_dir().join("signature_facts.py"), &pdf]);
    serde_json::from_str(out.trim()).expect("the signature judge prints JSON")
}

/// The annotations MuPDF (`mutool run`) finds in `pdf`.
pub fn mupdf_annotations(pdf: &Path) -> Vec<serde_json::Value> {
    let out = run_ok(
        "mutool",
        &[&"run", &judges_dir().join("annotations_mupdf.js"), &pdf],
    );
    let json = out.lines().last().unwrap_or_default();
    serde_json::from_str(json).expect("mutool judge prints JSON")
}

/// `qpdf --check`: asserts it finds the file clean (exit 0).
pub fn assert_qpdf_clean(pdf: &Path) {
    let output = run("qpdf", &[&"--check", &pdf]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "qpdf --check found problems in {}:\n{}{}",
        pdf.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Page 1 of `pdf` (its crop box) rendered by poppler's pdftoppm at `dpi`, as RGB.
pub fn poppler_page(pdf: &Path, dpi: u32) -> image::RgbImage {
    let stem = pdf.file_stem().expect("a file name").to_string_lossy();
    let prefix = pdf.with_file_name(format!("{stem}-poppler"));
    let dpi = dpi.to_string();
    let args: [&dyn AsRef<std::ffi::OsStr>; 11] = [
        &"-r",
        &dpi,
        &"-cropbox",
        &"-f",
        &"1",
        &"-l",
        &"1",
        &"-png",
        &"-singlefile",
        &pdf,
        &prefix,
    ];
    run_ok("pdftoppm", &args);
    image::open(prefix.with_extension("png"))
        .expect("pdftoppm wrote a PNG")
        .to_rgb8()
}

/// Whether a pixel shows the default highlight yellow (pure or multiplied over white).
pub fn is_yellow(p: &image::Rgb<u8>) -> bool {
    p[0] > 230 && (200..=250).contains(&p[1]) && p[2] < 60
}

/// An annotation of `kind` on page 1 with sensible defaults.
pub fn annotation(kind: AnnotationKind, geometry: Geometry, contents: &str) -> Annotation {
    Annotation {
        id: Uuid::from_u128(
            0x0e57_0000_0000_4000_8000_0000_0000_0000
                | u128::from(NEXT_ID.fetch_add(1, Ordering::SeqCst)),
        ),
        kind,
        page: 1,
        geometry,
        colour: if kind == AnnotationKind::Highlight {
            Colour::YELLOW
        } else {
            Colour::RED
        },
        contents: contents.to_owned(),
        author: "Иванова А. П.".to_owned(),
        created_ms: 1_795_000_000_000,
        modified_ms: 1_795_000_060_000,
        line_width: 2.0,
        font_size: 11.0,
    }
}

/// A rectangle from left, bottom, right, top.
pub fn rect(left: f32, bottom: f32, right: f32, top: f32) -> Rect {
    Rect {
        left,
        bottom,
        right,
        top,
    }
}

/// One of each kind, placed on an A4 sample page: markup over the first text lines, shapes in
/// the empty lower part.
pub fn one_of_each_kind() -> Vec<Annotation> {
    let quads = |r: Rect| Geometry::Quads {
        quads: vec![Quad::from_rect(r)],
    };
    vec![
        annotation(
            AnnotationKind::Highlight,
            quads(rect(54.0, 773.0, 300.0, 793.0)),
            "title checked",
        ),
        annotation(
            AnnotationKind::Underline,
            quads(rect(54.0, 752.0, 250.0, 764.0)),
            "underline",
        ),
        annotation(
            AnnotationKind::StrikeOut,
            quads(rect(54.0, 738.0, 250.0, 750.0)),
            "strike",
        ),
        annotation(
            AnnotationKind::Note,
            Geometry::Icon {
                at: Point { x: 420.0, y: 160.0 },
            },
            "Проверить дату приказа",
        ),
        annotation(
            AnnotationKind::FreeText,
            Geometry::Box {
                rect: rect(380.0, 40.0, 560.0, 120.0),
            },
            "Согласовано. Approved with remarks.",
        ),
        annotation(
            AnnotationKind::Ink,
            Geometry::Strokes {
                strokes: vec![
                    vec![
                        Point { x: 60.0, y: 140.0 },
                        Point { x: 90.0, y: 160.0 },
                        Point { x: 120.0, y: 140.0 },
                    ],
                    vec![Point { x: 130.0, y: 150.0 }],
                ],
            },
            "",
        ),
        annotation(
            AnnotationKind::Rectangle,
            Geometry::Box {
                rect: rect(60.0, 40.0, 200.0, 110.0),
            },
            "box",
        ),
        annotation(
            AnnotationKind::Ellipse,
            Geometry::Box {
                rect: rect(220.0, 40.0, 360.0, 110.0),
            },
            "ring",
        ),
    ]
}

/// The font free text is drawn with.
pub fn font() -> PathBuf {
    outpost_pdf::sample_font_path()
}

/// A test CA and a signer certificate that validators accept, made with openssl.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("ca.cnf"),
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        std::fs::write(
            d.join("signer.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        let p = |name: &str| d.join(name);
        key_and_request(d, "ca", "/CN=Outpost Test CA", KeyKind::Rsa2048);
        run_ok(
            "openssl",
            &[
                &"x509",
                &"-req",
                &"-in",
                &p("ca.csr"),
                &"-signkey",
                &p("ca.key"),
                &"-out",
                &p("ca.crt"),
                &"-days",
                &"30",
                &"-extfile",
                &p("ca.cnf"),
            ],
        );
        let db = format!("sql:{}", p("nss").display());
        std::fs::create_dir(p("nss")).unwrap();
        run_ok("certutil", &[&"-N", &"-d", &db, &"--empty-password"]);
        run_ok(
            "certutil",
            &[
                &"-A",
                &"-d",
                &db,
                &"-n",
                &"root",
                &"-t",
                &"CT,C,C",
                &"-i",
                &p("ca.crt"),
            ],
        );
        let pki = Self { dir };
        key_and_request(
            pki.dir.path(),
            "signer",
            "/CN=Test Signer",
            KeyKind::Rsa2048,
        );
        let request = std::fs::read_to_string(pki.path("signer.csr")).unwrap();
        pki.issue_for_request("signer", &request);
        pki
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub fn pyhanko_sign(&self, input: &Path, output: &Path) {
        run_ok(
            venv_program("pyhanko"),
            &[
                &"sign",
                &"addsig",
                &"--field",
                &"Sig1",
                &"pemder",
                &"--key",
                &self.path("signer.key"),
                &"--cert",
                &self.path("signer.crt"),
                &"--chain",
                &self.path("ca.crt"),
                &"--no-pass",
                &input,
                &output,
            ],
        );
    }

    /// pyHanko's verdict: exit status and report. `diff_analysis` off skips pyHanko's check of
    /// later incremental updates, whose standard policy recognises no annotation other than
    /// signature widgets (its source says so: "TODO allow other annotation modifications").
    pub fn pyhanko_validate(&self, pdf: &Path, diff_analysis: bool) -> (bool, String) {
        let trust = self.path("ca.crt");
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"sign",
            &"validate",
            &"--pretty-print",
            &"--trust",
            &trust,
            &"--trust-replace",
            &"--no-revocation-check",
        ];
        if !diff_analysis {
            args.push(&"--no-diff-analysis");
        }
        args.push(&pdf);
        let out = run(venv_program("pyhanko"), &args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// pyHanko's AdES validation with the long-term archival process (ETSI EN 319 102-1 LTA):
    /// revocation data is required and taken only from the file. Exit status and report.
    pub fn pyhanko_validate_long_term(&self, pdf: &Path) -> (bool, String) {
        let trust = self.path("ca.crt");
        let out = run(
            venv_program("pyhanko"),
            &[
                &"sign",
                &"adesverify",
                &"--pretty-print",
                &"--trust",
                &trust,
                &"--trust-replace",
                &pdf,
            ],
        );
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Asserts what every signed output must pass: qpdf finds the file sound, and pdfsig and
    /// pyHanko (its diff analysis on) find each of its `signatures` valid and its signer trusted.
    pub fn assert_judges_accept(&self, pdf: &Path, signatures: usize) {
        assert_qpdf_clean(pdf);
        let pdfsig = self.pdfsig(pdf);
        for verdict in [
            "Signature Validation: Signature is Valid.",
            "Certificate Validation: Certificate is Trusted.",
        ] {
            assert_eq!(pdfsig.matches(verdict).count(), signatures, "{pdfsig}");
        }
        let (valid, verdict) = self.pyhanko_validate(pdf, true);
        assert!(valid, "{verdict}");
        assert_eq!(
            verdict.matches("The signature is judged VALID.").count(),
            signatures,
            "{verdict}"
        );
    }

    pub fn pdfsig(&self, pdf: &Path) -> String {
        let db = format!("sql:{}", self.path("nss").display());
        let out = run("pdfsig", &[&"-nssdir", &db, &pdf]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Key types the test CA issues certificates for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a 2048-bit modulus (the CA, and pyHanko's signer).
    Rsa2048,
    /// RSA-3072, Outpost's RSA option.
    Rsa3072,
    /// ECDSA P-256, Outpost's default.
    EcP256,
}

/// `NAME.key` and a certificate request `NAME.csr` for `subject`, in `dir`.
fn key_and_request(dir: &Path, name: &str, subject: &str, kind: KeyKind) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let key_args: &[&dyn AsRef<std::ffi::OsStr>] = match kind {
        KeyKind::Rsa2048 => &[&"-newkey", &"rsa:2048"],
        KeyKind::Rsa3072 => &[&"-newkey", &"rsa:3072"],
        KeyKind::EcP256 => &[&"-newkey", &"ec", &"-pkeyopt", &"ec_paramgen_curve:P-256"],
    };
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"req", &"-new"];
    args.extend_from_slice(key_args);
    let subject_arg = subject.to_owned();
    args.extend_from_slice(&[
        &"-nodes",
        &"-keyout",
        &key,
        &"-out",
        &csr,
        &"-subj",
        &subject_arg,
    ]);
    run_ok("openssl", &args);
}

impl TestPki {
    /// A SoftHSM2 token "Outpost Test" under `dir` with user PIN `pin`, holding one ECDSA P-256
    /// key (id 01) and its certificate from this CA. Returns the SOFTHSM2_CONF file to point at it.
    pub fn softhsm_token(&self, dir: &Path, pin: &str) -> PathBuf {
        let tokens = dir.join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let config = dir.join("softhsm2.conf");
        std::fs::write(
            &config,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        run_ok(
            "env",
            &[
                &format!("SOFTHSM2_CONF={}", config.display()),
                &"softhsm2-util",
                &"--init-token",
                &"--free",
                &"--label",
                &"Outpost Test",
                &"--pin",
                &pin,
                &"--so-pin",
                &"5678",
            ],
        );
        let key = dir.join("token-key.pem");
        run_ok(
            "openssl",
            &[
                &"genpkey",
                &"-algorithm",
                &"EC",
                &"-pkeyopt",
                &"ec_paramgen_curve:P-256",
                &"-out",
                &key,
            ],
        );
        let pkcs8 = dir.join("token-key.p8");
        run_ok(
            "openssl",
            &[
                &"pkcs8",
                &"-topk8",
                &"-nocrypt",
                &"-in",
                &key,
                &"-out",
                &pkcs8,
            ],
        );
        let request = dir.join("token.csr");
        run_ok(
            "openssl",
            &[
                &"req",
                &"-new",
                &"-key",
                &key,
                &"-subj",
                &"/CN=Token Holder",
                &"-out",
                &request,
            ],
        );
        let issued = self.issue_for_request("token", &std::fs::read_to_string(&request).unwrap());
        let certificate_pem = dir.join("token.crt");
        std::fs::write(&certificate_pem, issued).unwrap();
        let certificate_der = dir.join("token.der");
        run_ok(
            "openssl",
            &[
                &"x509",
                &"-in",
                &certificate_pem,
                &"-outform",
                &"DER",
                &"-out",
                &certificate_der,
            ],
        );
        run_ok(
            "env",
            &[
                &format!("SOFTHSM2_CONF={}", config.display()),
                &"softhsm2-util",
                &"--import",
                &pkcs8,
                &"--token",
                &"Outpost Test",
                &"--label",
                &"signer",
                &"--id",
                &"01",
                &"--pin",
                &pin,
            ],
        );
        run_ok(
            "env",
            &[
                &format!("SOFTHSM2_CONF={}", config.display()),
                &"pkcs11-tool",
                &"--module",
                &"/usr/lib/softhsm/libsofthsm2.so",
                &"--token-label",
                &"Outpost Test",
                &"--login",
                &"--pin",
                &pin,
                &"--write-object",
                &certificate_der,
                &"--type",
                &"cert",
                &"--label",
                &"signer",
                &"--id",
                &"01",
            ],
        );
        config
    }

    /// Has the CA issue a signer certificate for a PKCS #10 request (PEM); returns the
    /// certificate followed by the CA's, as PEM.
    pub fn issue_for_request(&self, name: &str, request_pem: &str) -> String {
        let csr = self.path(&format!("{name}.csr"));
        let crt = self.path(&format!("{name}.crt"));
        std::fs::write(&csr, request_pem).unwrap();
        run_ok(
            "openssl",
            &[
                &"x509",
                &"-req",
                &"-in",
                &csr,
                &"-CA",
                &self.path("ca.crt"),
                &"-CAkey",
                &self.path("ca.key"),
                &"-CAcreateserial",
                &"-out",
                &crt,
                &"-days",
                &"30",
                &"-extfile",
                &self.path("signer.cnf"),
            ],
        );
        format!(
            "{}{}",
            std::fs::read_to_string(&crt).unwrap(),
            std::fs::read_to_string(self.path("ca.crt")).unwrap()
        )
    }

    /// A time-stamping authority's signer: a P-256 key whose certificate from the test CA has
    /// the critical extended key usage timeStamping (RFC 3161).
    pub fn tsa_signer(&self) -> outpost_pdf::SoftwareSigner {
        std::fs::write(
            self.path("tsa.cnf"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        key_and_request(
            self.dir.path(),
            "tsa",
            "/CN=Outpost Test TSA",
            KeyKind::EcP256,
        );
        run_ok(
            "openssl",
            &[
                &"x509",
                &"-req",
                &"-in",
                &self.path("tsa.csr"),
                &"-CA",
                &self.path("ca.crt"),
                &"-CAkey",
                &self.path("ca.key"),
                &"-CAcreateserial",
                &"-out",
                &self.path("tsa.crt"),
                &"-days",
                &"30",
                &"-extfile",
                &self.path("tsa.cnf"),
            ],
        );
        let key = self.der_of(
            &[
                &"pkcs8",
                &"-topk8",
                &"-nocrypt",
                &"-in",
                &self.path("tsa.key"),
            ],
            "tsa.key.der",
        );
        let certificate = self.der_of(&[&"x509", &"-in", &self.path("tsa.crt")], "tsa.crt.der");
        outpost_pdf::SoftwareSigner::from_pkcs8_der(&key, &certificate, &[self.ca_der()])
            .expect("a time-stamping signer")
    }

    /// The test CA's CRL (DER), revoking nothing, valid for 30 days (made once per PKI).
    pub fn crl_der(&self) -> Vec<u8> {
        if let Ok(made) = std::fs::read(self.path("crl.der")) {
            return made;
        }
        let d = self.dir.path();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("crlnumber"), "01\n").unwrap();
        std::fs::write(
            d.join("ca.conf"),
            format!(
                "[ca]\ndefault_ca = test\n[test]\ndatabase = {}\ncrlnumber = {}\ndefault_md = sha256\ndefault_crl_days = 30\n",
                d.join("index.txt").display(),
                d.join("crlnumber").display()
            ),
        )
        .unwrap();
        self.gencrl("crl")
    }

    /// Revokes the certificate of signer `name` (now) and returns a new CRL (DER) that names it.
    pub fn revoked_crl_der(&self, name: &str) -> Vec<u8> {
        self.crl_der();
        self.openssl_ca(&[&"-revoke", &self.path(&format!("{name}.crt"))]);
        self.gencrl("crl-revoked")
    }

    /// A CRL of the test CA's current database, written as `{stem}.pem`; its DER.
    fn gencrl(&self, stem: &str) -> Vec<u8> {
        let pem = self.path(&format!("{stem}.pem"));
        self.openssl_ca(&[&"-gencrl", &"-out", &pem]);
        self.der_of(&[&"crl", &"-in", &pem], &format!("{stem}.der"))
    }

    /// `openssl ca` with the test CA's configuration, key and certificate, then `args`.
    fn openssl_ca(&self, args: &[&dyn AsRef<std::ffi::OsStr>]) {
        let (conf, key, cert) = (
            self.dir.path().join("ca.conf"),
            self.path("ca.key"),
            self.path("ca.crt"),
        );
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"ca", &"-config", &conf, &"-keyfile", &key, &"-cert", &cert];
        all.extend_from_slice(args);
        run_ok("openssl", &all);
    }

    /// `openssl ARGS -outform DER -out NAME` and the bytes written.
    fn der_of(&self, args: &[&dyn AsRef<std::ffi::OsStr>], name: &str) -> Vec<u8> {
        let target = self.path(name);
        let mut all = args.to_vec();
        all.extend_from_slice(&[&"-outform", &"DER", &"-out", &target]);
        run_ok("openssl", &all);
        std::fs::read(target).unwrap()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        let target = self.path("ca.crt.der");
        run_ok(
            "openssl",
            &[
                &"x509",
                &"-in",
                &self.path("ca.crt"),
                &"-outform",
                &"DER",
                &"-out",
                &target,
            ],
        );
        std::fs::read(target).unwrap()
    }

    /// A signer with a new key of `kind` and a certificate from the test CA (chain: the CA).
    pub fn software_signer(
        &self,
        name: &str,
        subject: &str,
        kind: KeyKind,
    ) -> outpost_pdf::SoftwareSigner {
        key_and_request(self.dir.path(), name, subject, kind);
        let request = std::fs::read_to_string(self.path(&format!("{name}.csr"))).unwrap();
        self.issue_for_request(name, &request);
        let key = self.der_of(
            &[
                &"pkcs8",
                &"-topk8",
                &"-nocrypt",
                &"-in",
                &self.path(&format!("{name}.key")),
            ],
            &format!("{name}.key.der"),
        );
        let certificate = self.der_of(
            &[&"x509", &"-in", &self.path(&format!("{name}.crt"))],
            &format!("{name}.crt.der"),
        );
        let ca = self.ca_der();
        outpost_pdf::SoftwareSigner::from_pkcs8_der(&key, &certificate, &[ca]).expect("a signer")
    }
}
