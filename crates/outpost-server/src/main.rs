//! `outpost-server`: runs the server (`serve`) and administers it (every other subcommand). The
//! admin subcommands work on the same database and blob store as the server, running or not, and
//! print tab-separated columns so that scripts can read them.

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use outpost_protocol::{AssignmentTarget, Role};
use outpost_server::ca::CertificateAuthority;
use outpost_server::ca_token::TokenKeyLocation;
use outpost_server::clock::{new_token, OsEntropy, SystemClock};
use outpost_server::private_file::write_private_file;
use outpost_server::serve::{open_service, start, StorageConfig};
use outpost_server::service::{Actor, NewUser, Policy, Service};
use outpost_server::tls::{embedded_pair, server_config, TlsFiles};

/// Prints a line to standard output; a closed pipe (`| head`) is not an error.
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "outpost-server",
    version,
    about = "Outpost's central server and its administration"
)]
struct Cli {
    /// Where the server keeps its data: the SQLite database, blobs and generated TLS files.
    #[arg(long, env = "OUTPOST_SERVER_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The database: postgres://user@host:port/name, or sqlite:/path/file.db [default: SQLite in the data directory]
    #[arg(long, env = "OUTPOST_SERVER_DATABASE", global = true)]
    database: Option<String>,
    /// The blob store: file:/path/dir, or s3://bucket?endpoint=URL&region=NAME with credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY [default: blobs/ in the data directory]
    #[arg(long, env = "OUTPOST_SERVER_BLOBS", global = true)]
    blobs: Option<String>,
    /// The organisation's CA directory (ca.pem and the encrypted ca-key.pem) [default: ca/ in the data directory]
    #[arg(long, env = "OUTPOST_SERVER_CA_DIR", global = true)]
    ca_dir: Option<PathBuf>,
    /// A file holding the passphrase of the CA key [default: the OUTPOST_CA_PASSPHRASE variable, else ca-passphrase in the data directory]
    #[arg(long, global = true)]
    ca_passphrase_file: Option<PathBuf>,
    /// A file holding the PIN of the token that keeps the CA key (when it is on a token) [default: the OUTPOST_CA_PIN variable]
    #[arg(long, global = true)]
    ca_pin_file: Option<PathBuf>,
    /// The organisation's name in the CA and signer certificates.
    #[arg(
        long,
        env = "OUTPOST_ORGANISATION",
        default_value = "Outpost",
        global = true
    )]
    organisation: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTPS server until interrupted (Ctrl+C or SIGTERM finish requests in flight).
    Serve(ServeArgs),
    /// Units: create, list.
    #[command(subcommand)]
    Unit(UnitCommand),
    /// Users: create, list, reset a password, lift a lockout.
    #[command(subcommand)]
    User(UserCommand),
    /// The TOTP second factor and recovery codes: enrol, reset.
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Documents: register a PDF, list.
    #[command(subcommand)]
    Document(DocumentCommand),
    /// Assign a document to a user or a whole unit.
    Assign(AssignArgs),
    /// End an assignment.
    Unassign(AssignArgs),
    /// Devices: list, revoke.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// The organisation's certificate authority: init, show.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Signer certificates issued to a user: serial, device id, issued, not after, revoked, subject.
    Certificates {
        /// The user.
        username: String,
    },
    /// Seed an EMPTY server with demo data for the embedded default — unit "Unit 7"; users demo
    /// (supervisor), colleague (staff), trainee and admin, all with the password "outpost-demo";
    /// the generated sample documents assigned to the unit — and write each user's TOTP secret to
    /// demo-totp.tsv in the data directory. Demo only; a server with users is left untouched.
    Demo,
    /// The tutorial progress trainees' workstations sent: user, role, device, when received,
    /// lessons completed of those available, and each lesson's steps done.
    Training,
    /// List the audit records the server holds, oldest first.
    Audit {
        /// Only records after this position.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many records (up to 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8443", env = "OUTPOST_SERVER_LISTEN")]
    listen: SocketAddr,
    /// The server's certificate chain (PEM). Without it, a private CA and certificate are
    /// generated once in the data directory (tls/ca.pem is what workstations pin).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra host names or addresses for the generated certificate.
    #[arg(long = "tls-name")]
    tls_names: Vec<String>,
    /// Write logs as JSON lines instead of text.
    #[arg(long)]
    json_logs: bool,
    /// The policy OID the time-stamping authority writes into its tokens (your organisation's
    /// time-stamping policy; without it, 1.3.6.1.4.1.0.1: "no registered policy").
    #[arg(long, env = "OUTPOST_TSA_POLICY")]
    tsa_policy: Option<String>,
}

#[derive(Subcommand)]
enum UnitCommand {
    /// Create a unit.
    Create {
        /// The unit's name.
        name: String,
    },
    /// List units: id, name.
    List,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. Without --password-stdin a random password is generated and printed.
    Create {
        /// Login name: lowercase a-z, digits, '.', '_', '-'.
        username: String,
        /// The name shown to people.
        #[arg(long)]
        display_name: String,
        /// staff, supervisor, trainee or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The user's unit.
        #[arg(long)]
        unit: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users: id, username, role, unit id, MFA enrolled, locked until, display name.
    List,
    /// Set a new password (lifts a lockout too).
    ResetPassword {
        /// The user.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: their devices, sessions and certificates are revoked at once.
    Disable {
        /// The user.
        username: String,
    },
    /// Lift a lockout after repeated failed logins.
    Unlock {
        /// The user.
        username: String,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the CA (ECDSA P-256); keeps an existing one. Its key goes in an encrypted file, or,
    /// with --pkcs11-module, stays on a token: the key pair labelled --key-label, generated there
    /// beforehand (e.g. `pkcs11-tool --keypairgen --key-type EC:prime256v1 --label …`); the PIN
    /// comes from --ca-pin-file or OUTPOST_CA_PIN.
    Init {
        /// The token's PKCS#11 module.
        #[arg(long, requires_all = ["token_label", "key_label"])]
        pkcs11_module: Option<PathBuf>,
        /// The token's label.
        #[arg(long)]
        token_label: Option<String>,
        /// The label of the CA key pair on the token.
        #[arg(long)]
        key_label: Option<String>,
    },
    /// Print the CA certificate (PEM), for workstations and validators to trust.
    Show,
}

#[derive(Subcommand)]
enum MfaCommand {
    /// Enrol (or replace) the TOTP secret and recovery codes; prints them once.
    Enrol {
        /// The user.
        username: String,
    },
    /// Remove the second factor; the user cannot sign in until enrolled again.
    Reset {
        /// The user.
        username: String,
    },
}

#[derive(Subcommand)]
enum DocumentCommand {
    /// Register a PDF; prints its id and SHA-256.
    Register {
        /// The PDF file.
        file: PathBuf,
        /// Its title.
        #[arg(long)]
        title: String,
        /// Its classification.
        #[arg(long, default_value = "internal")]
        classification: String,
    },
    /// List documents: id, sha256, size, classification, title.
    List,
}

#[derive(Args)]
struct AssignArgs {
    /// The document's id.
    document_id: String,
    /// A user, by login name.
    #[arg(long, conflicts_with = "unit", required_unless_present = "unit")]
    user: Option<String>,
    /// A unit, by name.
    #[arg(long)]
    unit: Option<String>,
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// List devices: id, user id, enrolled at, revoked at, name.
    List {
        /// Only this user's devices.
        #[arg(long)]
        user: Option<String>,
    },
    /// Continuity problems found in a device's uploaded audit chain: position, problem.
    AuditProblems {
        /// The device's id.
        device_id: String,
    },
    /// Revoke a device: its sessions end at once and it cannot sign in again.
    Revoke {
        /// The device's id.
        device_id: String,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("{text:?} is not a role: use staff, supervisor, trainee or admin"))
}

fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("outpost-server")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("outpost-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("outpost-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_password(from_stdin: bool) -> Result<(String, bool), String> {
    if !from_stdin {
        return Ok((new_token(&OsEntropy)[..20].to_string(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
}

fn target(args: &AssignArgs) -> AssignmentTarget {
    match (&args.user, &args.unit) {
        (Some(username), _) => AssignmentTarget::User {
            username: username.clone(),
        },
        (None, Some(name)) => AssignmentTarget::Unit { name: name.clone() },
        (None, None) => AssignmentTarget::Unit {
            name: String::new(),
        },
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let storage = StorageConfig {
        database: cli.database,
        blobs: cli.blobs,
        ..StorageConfig::in_dir(&data_dir)
    };
    if let Command::Serve(args) = &cli.command {
        init_logs(args.json_logs);
    }
    let mut policy = Policy::default();
    if let Command::Serve(ServeArgs {
        tsa_policy: Some(oid),
        ..
    }) = &cli.command
    {
        policy.tsa_policy = oid.clone();
    }
    let service = open_service(&storage, Arc::new(SystemClock), Arc::new(OsEntropy), policy)
        .await
        .map_err(|e| e.to_string())?;
    let fail = |e: outpost_server::service::ServiceError| e.to_string();
    let ca = CaSettings {
        dir: cli.ca_dir.clone().unwrap_or_else(|| data_dir.join("ca")),
        passphrase_file: cli.ca_passphrase_file.clone(),
        pin_file: cli.ca_pin_file.clone(),
        data_dir: data_dir.clone(),
        organisation: cli.organisation.clone(),
    };
    match cli.command {
        Command::Serve(args) => {
            // The embedded default creates its CA on first start; a CA that exists must open.
            let service = match load_ca(&ca, service.now(), true)? {
                Some(authority) => service
                    .with_certificate_authority(Arc::new(authority))
                    .map_err(|e| format!("the time-stamping authority cannot start: {e}"))?,
                None => service,
            };
            serve(service, &data_dir, args).await
        }
        Command::Demo => seed_demo_data(&service, &data_dir).await,
        Command::Unit(UnitCommand::Create { name }) => {
            let unit = service.create_unit(Actor::Cli, &name).await.map_err(fail)?;
            emit!("{}", unit.id);
            Ok(())
        }
        Command::Unit(UnitCommand::List) => {
            for unit in service.units().await.map_err(fail)? {
                emit!("{}\t{}", unit.id, unit.name);
            }
            Ok(())
        }
        Command::User(UserCommand::Create {
            username,
            display_name,
            role,
            unit,
            password_stdin,
        }) => {
            let (password, generated) = read_password(password_stdin)?;
            let user = service
                .create_user(
                    Actor::Cli,
                    NewUser {
                        username,
                        display_name,
                        role,
                        unit,
                        password: password.clone(),
                    },
                )
                .await
                .map_err(fail)?;
            emit!("{}", user.id);
            if generated {
                emit!("password\t{password}");
            }
            Ok(())
        }
        Command::User(UserCommand::List) => {
            for user in service.users().await.map_err(fail)? {
                emit!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    user.id,
                    user.username,
                    user.role.as_str(),
                    user.unit_id.as_deref().unwrap_or("-"),
                    if user.totp_secret.is_some() {
                        "mfa"
                    } else {
                        "no-mfa"
                    },
                    user.locked_until.map_or("-".to_string(), |t| t.to_string()),
                    user.display_name
                );
            }
            Ok(())
        }
        Command::User(UserCommand::ResetPassword {
            username,
            password_stdin,
        }) => {
            let (password, generated) = read_password(password_stdin)?;
            service
                .reset_password(Actor::Cli, &username, &password)
                .await
                .map_err(fail)?;
            if generated {
                emit!("password\t{password}");
            }
            Ok(())
        }
        Command::User(UserCommand::Disable { username }) => service
            .disable_user(Actor::Cli, &username)
            .await
            .map_err(fail),
        Command::Ca(CaCommand::Init {
            pkcs11_module: Some(module),
            token_label,
            key_label,
        }) => {
            let location = TokenKeyLocation {
                module,
                token_label: token_label.unwrap_or_default(),
                key_label: key_label.unwrap_or_default(),
            };
            let pin = ca_pin(&ca)?;
            let authority = CertificateAuthority::init_on_token(
                &ca.dir,
                &ca.organisation,
                &location,
                &pin,
                service.now(),
                &OsEntropy,
            )
            .map_err(|e| e.to_string())?;
            emit!("{}", authority.certificate_pem().trim_end());
            Ok(())
        }
        Command::Ca(CaCommand::Init {
            pkcs11_module: None,
            ..
        }) => {
            let ca = load_ca(&ca, service.now(), true)?.ok_or("the CA could not be created")?;
            emit!("{}", ca.certificate_pem().trim_end());
            Ok(())
        }
        Command::Ca(CaCommand::Show) => {
            let ca = load_ca(&ca, service.now(), false)?.ok_or_else(|| {
                format!(
                    "there is no CA in {}: create one with `outpost-server ca init`",
                    ca.dir.display()
                )
            })?;
            emit!("{}", ca.certificate_pem().trim_end());
            Ok(())
        }
        Command::Certificates { username } => {
            for c in service.certificates(&username).await.map_err(fail)? {
                emit!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    c.serial,
                    c.device_id,
                    c.issued_at,
                    c.not_after,
                    c.revoked_at.map_or("-".to_string(), |t| t.to_string()),
                    c.subject
                );
            }
            Ok(())
        }
        Command::User(UserCommand::Unlock { username }) => service
            .unlock_user(Actor::Cli, &username)
            .await
            .map_err(fail),
        Command::Mfa(MfaCommand::Enrol { username }) => {
            let enrolment = service
                .enrol_second_factor(Actor::Cli, &username)
                .await
                .map_err(fail)?;
            emit!("secret\t{}", enrolment.secret_base32);
            emit!("otpauth\t{}", enrolment.otpauth_uri);
            for code in &enrolment.recovery_codes {
                emit!("recovery\t{code}");
            }
            Ok(())
        }
        Command::Mfa(MfaCommand::Reset { username }) => service
            .reset_second_factor(Actor::Cli, &username)
            .await
            .map_err(fail),
        Command::Document(DocumentCommand::Register {
            file,
            title,
            classification,
        }) => {
            let mut bytes = Vec::new();
            std::fs::File::open(&file)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let document = service
                .register_document(Actor::Cli, &title, &classification, bytes.into())
                .await
                .map_err(fail)?;
            emit!("{}\t{}", document.id, document.sha256);
            Ok(())
        }
        Command::Document(DocumentCommand::List) => {
            for d in service.all_documents().await.map_err(fail)? {
                emit!(
                    "{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.sha256,
                    d.size,
                    d.classification,
                    d.title
                );
            }
            Ok(())
        }
        Command::Assign(args) => {
            let assignment = service
                .assign(Actor::Cli, &args.document_id, &target(&args))
                .await
                .map_err(fail)?;
            emit!("{}", assignment.id);
            Ok(())
        }
        Command::Unassign(args) => service
            .revoke_assignment(Actor::Cli, &args.document_id, &target(&args))
            .await
            .map_err(fail),
        Command::Device(DeviceCommand::List { user }) => {
            for d in service.devices(user.as_deref()).await.map_err(fail)? {
                emit!(
                    "{}\t{}\t{}\t{}\t{}",
                    d.id,
                    d.user_id,
                    d.enrolled_at,
                    d.revoked_at.map_or("-".to_string(), |t| t.to_string()),
                    d.name
                );
            }
            Ok(())
        }
        Command::Device(DeviceCommand::AuditProblems { device_id }) => {
            for (seq, problem) in service
                .device_audit_problems(&device_id)
                .await
                .map_err(fail)?
            {
                emit!("{seq}\t{problem}");
            }
            Ok(())
        }
        Command::Device(DeviceCommand::Revoke { device_id }) => service
            .revoke_device(Actor::Cli, &device_id)
            .await
            .map_err(fail),
        Command::Training => {
            for t in service
                .training_overview(None)
                .await
                .map_err(fail)?
                .trainees
            {
                let p = &t.progress;
                let lessons: Vec<String> = p
                    .lessons
                    .iter()
                    .map(|l| format!("{}={}/{}", l.lesson, l.steps_done, l.steps_total))
                    .collect();
                emit!(
                    "{}\t{}\t{}\t{}\t{}/{} lessons\t{}",
                    t.username,
                    t.role.as_str(),
                    t.device_id,
                    t.received_at_ms,
                    p.lessons_completed,
                    p.lessons_available,
                    lessons.join(" ")
                );
            }
            Ok(())
        }
        Command::Audit { after, limit } => {
            for row in service.audit_records(after, limit).await.map_err(fail)? {
                let r = row.record;
                emit!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    row.seq,
                    r.at,
                    r.actor,
                    r.action,
                    r.subject,
                    r.detail
                );
            }
            Ok(())
        }
    }
}

/// Where the CA lives and how its passphrase is found.
struct CaSettings {
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    data_dir: PathBuf,
    organisation: String,
}

/// Finds the CA passphrase: the file given, the environment, or the data directory's
/// `ca-passphrase`. With `create` and none found, generates one into the data directory (for the
/// embedded default; a production deployment supplies its own from a secret store).
fn ca_passphrase(settings: &CaSettings, create: bool) -> Result<Option<String>, String> {
    if let Some(file) = &settings.passphrase_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
    }
    if let Ok(text) = std::env::var("OUTPOST_CA_PASSPHRASE") {
        return Ok(Some(text));
    }
    let generated = settings.data_dir.join("ca-passphrase");
    if generated.exists() {
        let text = std::fs::read_to_string(&generated)
            .map_err(|e| format!("cannot read {}: {e}", generated.display()))?;
        return Ok(Some(text.trim().to_string()));
    }
    if !create {
        return Ok(None);
    }
    let passphrase = new_token(&OsEntropy);
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", settings.data_dir.display()))?;
    write_private_file(&generated, passphrase.as_bytes(), false)
        .map_err(|e| format!("cannot write {}: {e}", generated.display()))?;
    tracing::warn!(file = %generated.display(), "generated a CA passphrase beside the data; a production deployment should pass --ca-passphrase-file from a secret store");
    Ok(Some(passphrase))
}

/// The PIN of a CA key on a token: from --ca-pin-file, else OUTPOST_CA_PIN.
fn ca_pin(settings: &CaSettings) -> Result<String, String> {
    if let Some(file) = &settings.pin_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    std::env::var("OUTPOST_CA_PIN").map_err(|_| {
        "the CA key is on a token: give its PIN with --ca-pin-file or OUTPOST_CA_PIN".to_string()
    })
}

/// Opens the CA, or with `create` makes it when missing. None when there is none and `create` is
/// false.
fn load_ca(
    settings: &CaSettings,
    now: i64,
    create: bool,
) -> Result<Option<CertificateAuthority>, String> {
    if CertificateAuthority::uses_token(&settings.dir) {
        let pin = ca_pin(settings)?;
        return CertificateAuthority::open_on_token(&settings.dir, &settings.organisation, &pin)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    let exists = settings.dir.join("ca-key.pem").exists();
    if !exists && !create {
        return Ok(None);
    }
    let passphrase = ca_passphrase(settings, create && !exists)?.ok_or_else(|| {
        format!(
            "the CA in {} needs its passphrase: pass --ca-passphrase-file or set OUTPOST_CA_PASSPHRASE",
            settings.dir.display()
        )
    })?;
    let authority = if exists {
        CertificateAuthority::open(&settings.dir, &settings.organisation, &passphrase)
    } else {
        CertificateAuthority::init(
            &settings.dir,
            &settings.organisation,
            &passphrase,
            now,
            &OsEntropy,
        )
    };
    authority.map(Some).map_err(|e| e.to_string())
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(
    service: Service,
    data_dir: &std::path::Path,
    args: ServeArgs,
) -> Result<(), String> {
    let files = match (args.tls_cert, args.tls_key) {
        (Some(certificate), Some(private_key)) => TlsFiles {
            certificate,
            private_key,
            ca_certificate: None,
        },
        _ => embedded_pair(data_dir, &args.tls_names, service.now()).map_err(|e| e.to_string())?,
    };
    let tls = server_config(&files).map_err(|e| e.to_string())?;
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let backend = service.store().backend();
    let running = start(Arc::new(service), listener, tls).map_err(|e| e.to_string())?;
    tracing::info!(address = %running.address(), backend, "outpost-server listening on https://{}", running.address());
    if let Some(ca) = &files.ca_certificate {
        tracing::info!(ca = %ca.display(), "workstations pin this CA certificate");
    }
    let handle = running.shutdown_handle();
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("stopping: finishing requests in flight (up to 30 s)");
        handle.graceful_shutdown(Some(Duration::from_secs(30)));
    });
    running
        .wait()
        .await
        .map_err(|e| format!("the server stopped with an error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// `outpost-server demo`: generates the sample documents (pdfium), seeds them with the demo users
/// and writes the users' TOTP secrets beside the database, readable by the owner only.
async fn seed_demo_data(service: &Service, data_dir: &Path) -> Result<(), String> {
    let documents = tokio::task::spawn_blocking(|| {
        let pdf = outpost_pdf::PdfEngine::start_default().map_err(|e| e.to_string())?;
        let mut documents = Vec::new();
        for spec in outpost_pdf::demo_samples() {
            let bytes = pdf.write_sample(&spec).map_err(|e| e.to_string())?;
            let info = pdf
                .inspect(Arc::new(bytes.clone()))
                .map_err(|e| e.to_string())?;
            let title = info.title().unwrap_or_else(|| "Sample document".into());
            documents.push((title, bytes));
        }
        Ok::<_, String>(documents)
    })
    .await
    .map_err(|e| format!("generating the sample documents stopped: {e}"))??;
    let Some(seed) = outpost_server::demo::seed_demo(service, documents)
        .await
        .map_err(|e| e.to_string())?
    else {
        emit!("this server has users already; the demo data were not added");
        return Ok(());
    };
    let mut secrets = String::new();
    for (username, secret) in &seed.totp_secrets {
        secrets.push_str(&format!("{username}\t{secret}\n"));
    }
    let path = data_dir.join("demo-totp.tsv");
    write_private_file(&path, secrets.as_bytes(), true)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    emit!(
        "demo data added: {} users (password {}), {} documents; TOTP secrets in {}",
        seed.totp_secrets.len(),
        outpost_server::demo::DEMO_PASSWORD,
        seed.documents.len(),
        path.display()
    );
    Ok(())
}
