//! Command line and settings. Every setting is a flag and an environment
//! variable; `smsfleet <cmd> --help` lists them with their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "smsfleet", version, about = "Horizontally scalable SMS gateway (playSMS and bulk HTTP APIs)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once at start-up; boxing buys nothing")]
pub enum Command {
    /// Everything in one process: private NATS and PostgreSQL (unless
    /// NATS_URL / DATABASE_URL are set), migrations, a first admin, every
    /// role and the SMSC simulator as the default route.
    All(AllArgs),
    /// The HTTP APIs.
    Ingress(IngressArgs),
    /// Charges submissions and forwards them to dispatch or the scheduler.
    Ledger(RoleArgs),
    /// Holds scheduled messages and releases them when due.
    Scheduler(RoleArgs),
    /// Sends messages to upstream SMSC routes.
    Dispatcher(DispatcherArgs),
    /// Receives delivery-report callbacks.
    Dlr(DlrArgs),
    /// Maintains the Postgres projection; answers ds and cr.
    Query(RoleArgs),
    /// Pushes delivery reports of bulk API `dlr=1` messages to callback URLs.
    Callbacks(RoleArgs),
    /// Owns account changes and publishes account state.
    Accounts(RoleArgs),
    /// The upstream SMSC simulator.
    Simulator(SimulatorArgs),
    /// Applies the database migrations and exits.
    Migrate(StoreArgs),
    /// Account administration.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Rates per destination prefix.
    Rate {
        #[command(subcommand)]
        command: RateCommand,
    },
    /// The global stop list (bulk API code 1042).
    Stoplist {
        #[command(subcommand)]
        command: StopCommand,
    },
    /// Per-account do-not-disturb lists (bulk API code 1732).
    Dnd {
        #[command(subcommand)]
        command: StopCommand,
    },
    /// Sender IDs approved per account (`op=accountconf`'s `data_sender` must be one).
    Sender {
        #[command(subcommand)]
        command: SenderCommand,
    },
    /// Lifts the brute-force block of a client IP on every ingress replica.
    Unblock(UnblockArgs),
    /// The SMPP server's live binds.
    Smpp {
        #[command(subcommand)]
        command: SmppCommand,
    },
    /// Contacts and groups per account (get_contact, `#CODE` in pv).
    Phonebook {
        #[command(subcommand)]
        command: PhonebookCommand,
    },
    /// Incoming keywords: a received message whose first word is a keyword
    /// goes to the keyword's owner (playSMS `op=in`).
    Keyword {
        #[command(subcommand)]
        command: KeywordCommand,
    },
    /// The dispatcher's routes file.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Checks a routes file as the dispatcher would at start (secrets named
    /// by `password_env` and `callback_secret_env` must be set) and lists its routes.
    Check {
        /// The TOML routes file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// Approves a sender ID for an account.
    Add(SenderArgs),
    /// Withdraws an approved sender ID.
    Remove(SenderArgs),
}

#[derive(Debug, Args)]
pub struct SenderArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub username: String,
    /// Up to 11 letters and digits, or a number of up to 16 digits.
    #[arg(long)]
    pub sender: String,
}

#[derive(Debug, Subcommand)]
pub enum SmppCommand {
    /// Lists the live SMPP binds of every ingress replica.
    Sessions(SmppSessionsArgs),
}

#[derive(Debug, Args)]
pub struct SmppSessionsArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    /// Milliseconds to wait for the replicas' answers.
    #[arg(long, default_value_t = 1000)]
    pub wait_ms: u64,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    /// The client IP to unblock.
    pub ip: std::net::IpAddr,
}

#[derive(Debug, Subcommand)]
pub enum PhonebookCommand {
    /// Imports contacts from a CSV file with the header
    /// `name,mobile,email,tags,groups` (`groups`: `;`-separated codes).
    /// All rows or none; a known mobile is updated, not added again.
    Import(PhonebookImportArgs),
    /// Adds, renames or removes groups.
    Group {
        #[command(subcommand)]
        command: PhonebookGroupCommand,
    },
    /// Prints an account's groups and contacts.
    List(PhonebookListArgs),
}

#[derive(Debug, Subcommand)]
pub enum PhonebookGroupCommand {
    /// Creates a group, or renames the group with this code.
    Add(PhonebookGroupArgs),
    /// Removes a group; its contacts stay.
    Remove(PhonebookGroupArgs),
}

#[derive(Debug, Args)]
pub struct PhonebookImportArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The account whose phonebook it is.
    #[arg(long)]
    pub user: String,
    /// The CSV file.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PhonebookGroupArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub user: String,
    /// Letters, digits, `_` or `-`; stored upper-case.
    #[arg(long)]
    pub code: String,
    /// Display name (`group add`; default: the code).
    #[arg(long, default_value = "")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PhonebookListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub user: String,
}

#[derive(Debug, Subcommand)]
pub enum KeywordCommand {
    /// Gives a keyword to an account.
    Add(KeywordAddArgs),
    /// Removes a keyword; its messages go to the admins' sandbox (`op=sx`) again.
    Remove(KeywordArgs),
    /// Lists every keyword with its owner.
    List(StoreArgs),
}

#[derive(Debug, Args)]
pub struct KeywordAddArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// One word; matched case-insensitively and stored upper-case.
    pub keyword: String,
    /// The owner's username.
    #[arg(long)]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct KeywordArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    pub keyword: String,
}

#[derive(Debug, Subcommand)]
pub enum StopCommand {
    /// Adds a number.
    Add(StopArgs),
    /// Removes a number.
    Remove(StopArgs),
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Account whose do-not-disturb list changes (`dnd` only).
    #[arg(long)]
    pub username: Option<String>,
    /// Optional `+`, then 5 to 15 digits.
    #[arg(long)]
    pub number: String,
}

#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "SMSFLEET_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Args, Clone)]
pub struct BusArgs {
    /// NATS server URL (JetStream enabled), or a comma-separated list of a
    /// cluster's servers: `nats://a:4222,nats://b:4222`.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: String,
    /// Copies of every stream (1 to 5); more than 1 needs a JetStream
    /// cluster of at least that many servers. Provisioning changes existing
    /// streams to this count.
    #[arg(long, env = "SMSFLEET_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
    /// Prefix of every stream and subject; two fleets can share a NATS cluster.
    #[arg(long, env = "SMSFLEET_NAMESPACE", default_value = "smsfleet")]
    pub namespace: String,
}

#[derive(Debug, Args, Clone)]
pub struct RoleArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "SMSFLEET_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// 64 hex characters; the key that protects tokens. Keep it secret and stable.
    #[arg(long, env = "SMSFLEET_SERVER_KEY", hide_env_values = true)]
    pub server_key: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct IngressArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[arg(long, env = "SMSFLEET_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    #[arg(long, env = "SMSFLEET_SERVER_KEY", hide_env_values = true)]
    pub server_key: String,
    #[command(flatten)]
    pub http: IngressSettings,
}

#[derive(Debug, Args, Clone)]
pub struct IngressSettings {
    /// Address of the HTTP APIs.
    #[arg(long, env = "SMSFLEET_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Most destinations in one request.
    #[arg(long, env = "SMSFLEET_MAX_DESTINATIONS", default_value_t = 10_000)]
    pub max_destinations: usize,
    /// Longest message in SMS parts.
    #[arg(long, env = "SMSFLEET_MAX_PARTS", default_value_t = 10)]
    pub max_parts: u32,
    /// Sender id when neither `from` nor the account's sender is set.
    #[arg(long, env = "SMSFLEET_DEFAULT_SENDER", default_value = "smsfleet")]
    pub default_sender: String,
    /// Hours a message may wait for an upstream before it fails.
    #[arg(long, env = "SMSFLEET_VALIDITY_HOURS", default_value_t = 48)]
    pub validity_hours: u64,
    /// Bulk API: client IPs refused with code 16 (IPs, CIDR ranges or wildcards, comma-separated).
    #[arg(long, env = "SMSFLEET_BULK_IP_BLACKLIST", default_value = "")]
    pub bulk_ip_blacklist: String,
    /// Bulk API: `|`-separated case-insensitive substrings refused with code 1028.
    #[arg(long, env = "SMSFLEET_BULK_SPAM_PATTERNS", default_value = "")]
    pub bulk_spam_patterns: String,
    /// Bulk API: seconds within which the same account, destination and text is refused with 1041 (0 = off).
    #[arg(long, env = "SMSFLEET_BULK_DUPLICATE_WINDOW_SECS", default_value_t = 0)]
    pub bulk_duplicate_window_secs: u64,
    /// Failed logins (token, password) one client IP may make within the window before it is blocked; 0 = off.
    #[arg(long, env = "SMSFLEET_LOGIN_ATTEMPT_LIMIT", default_value_t = 10)]
    pub login_attempt_limit: u32,
    /// Window, in seconds, over which failed logins are counted.
    #[arg(long, env = "SMSFLEET_LOGIN_WINDOW_SECS", default_value_t = 600)]
    pub login_window_secs: u64,
    /// How long, in seconds, a client IP stays blocked (on every ingress replica).
    #[arg(long, env = "SMSFLEET_LOGIN_BLOCK_SECS", default_value_t = 3600)]
    pub login_block_secs: u64,
    /// Where `op=ws_login` redirects (playSMS: `index.php`), e.g. an operator portal URL.
    #[arg(long, env = "SMSFLEET_WEB_ROOT", default_value = "index.php")]
    pub web_root: String,
    /// Reverse proxies (IPs, CIDR ranges or wildcards) whose X-Forwarded-For is believed; empty = none.
    #[arg(long, env = "SMSFLEET_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// How long a send is retried (a NATS restart, a leader election) before it is answered as not stored.
    #[arg(long, env = "SMSFLEET_STORE_DEADLINE_SECS", default_value_t = 10)]
    pub store_deadline_secs: u64,
    /// SUBMIT publishes in flight at once (group commit): more gives smaller batches, fewer bigger ones.
    #[arg(long, env = "SMSFLEET_SUBMIT_PUBLISHERS", default_value_t = 4)]
    pub submit_publishers: usize,
    #[command(flatten)]
    pub limits: HttpLimitArgs,
    #[command(flatten)]
    pub smpp: SmppArgs,
}

/// An address to listen on, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenOrOff(pub Option<SocketAddr>);

fn listen_or_off(s: &str) -> Result<ListenOrOff, String> {
    match s.trim() {
        "" | "off" => Ok(ListenOrOff(None)),
        addr => addr.parse().map(|a| ListenOrOff(Some(a))).map_err(|e| format!("{addr:?}: {e}")),
    }
}

/// The SMPP server for customers (part of the ingress role).
#[derive(Debug, Args, Clone)]
pub struct SmppArgs {
    /// Address of the SMPP 3.4 server for customers; `off` switches it off.
    #[arg(long, env = "SMSFLEET_SMPP_LISTEN", default_value = "127.0.0.1:2775", value_parser = listen_or_off)]
    pub smpp_listen: ListenOrOff,
    /// Address of SMPP over TLS (needs the certificate and key files); unset = none.
    #[arg(long, env = "SMSFLEET_SMPP_TLS_LISTEN")]
    pub smpp_tls_listen: Option<SocketAddr>,
    /// PEM file with the TLS server certificate chain.
    #[arg(long, env = "SMSFLEET_SMPP_TLS_CERT")]
    pub smpp_tls_cert: Option<PathBuf>,
    /// PEM file with the TLS private key.
    #[arg(long, env = "SMSFLEET_SMPP_TLS_KEY")]
    pub smpp_tls_key: Option<PathBuf>,
    /// Our system_id in bind responses.
    #[arg(long, env = "SMSFLEET_SMPP_SYSTEM_ID", default_value = "smsfleet")]
    pub smpp_system_id: String,
    /// submit_sm a bind may have unanswered; beyond it ESME_RTHROTTLED.
    #[arg(long, env = "SMSFLEET_SMPP_WINDOW", default_value_t = 64)]
    pub smpp_window: usize,
    /// Largest PDU accepted, in bytes (checked from the length field).
    #[arg(long, env = "SMSFLEET_SMPP_MAX_PDU_BYTES", default_value_t = 8192)]
    pub smpp_max_pdu_bytes: usize,
    /// Seconds a bind may pass with nothing but enquire_link before it is closed (0 = never).
    #[arg(long, env = "SMSFLEET_SMPP_IDLE_TIMEOUT_SECS", default_value_t = 0)]
    pub smpp_idle_timeout_secs: u64,
    /// Seconds between our enquire_link on each bind.
    #[arg(long, env = "SMSFLEET_SMPP_ENQUIRE_LINK_SECS", default_value_t = 30)]
    pub smpp_enquire_link_secs: u64,
    /// Seconds a customer has to answer our deliver_sm and enquire_link.
    #[arg(long, env = "SMSFLEET_SMPP_RESPONSE_TIMEOUT_SECS", default_value_t = 30)]
    pub smpp_response_timeout_secs: u64,
    /// Hours a receipt waits for the customer to bind before it is dropped (at most 168).
    #[arg(long, env = "SMSFLEET_SMPP_RECEIPT_EXPIRY_HOURS", default_value_t = 72)]
    pub smpp_receipt_expiry_hours: u64,
}

/// Timeouts and connection limits of a role's HTTP port (ingress, dlr).
#[derive(Debug, Args, Clone)]
pub struct HttpLimitArgs {
    /// Seconds a connection may take to send a request's head, and may stay idle between requests.
    #[arg(long, env = "SMSFLEET_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    pub http_header_timeout_secs: u64,
    /// Connections open at once on the port; keep it below the process's descriptor limit.
    #[arg(long, env = "SMSFLEET_HTTP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub http_max_connections: usize,
    /// Connections open at once from one TCP peer IP (0 = no limit).
    #[arg(long, env = "SMSFLEET_HTTP_MAX_CONNECTIONS_PER_IP", default_value_t = 1024)]
    pub http_max_connections_per_ip: usize,
}

#[derive(Debug, Args, Clone)]
pub struct DispatcherArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub routes: RouteArgs,
}

/// Where the dispatcher's routes come from: the routes file, or the
/// shorthand for simple cases (not both).
#[derive(Debug, Args, Clone)]
pub struct RouteArgs {
    /// The routes file (TOML, see deploy/routes.example.toml); re-read on SIGHUP.
    #[arg(long, env = "SMSFLEET_ROUTES_FILE")]
    pub routes_file: Option<PathBuf>,
    /// Simulator routes in shorthand, `;`-separated, e.g.
    /// `name=sim,url=http://127.0.0.1:8090/submit,dlr=http://127.0.0.1:8081/dlr/sim,mps=500`.
    #[arg(long, env = "SMSFLEET_ROUTES")]
    pub routes: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct DlrArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    /// Address receiving delivery-report callbacks.
    #[arg(long, env = "SMSFLEET_DLR_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// The dispatcher's routes (the same file or shorthand): callbacks are
    /// taken only for these, with each route's `callback_secret_env` and
    /// `callback_allow`. Read at start.
    #[command(flatten)]
    pub routes: RouteArgs,
    #[command(flatten)]
    pub limits: HttpLimitArgs,
}

#[derive(Debug, Args, Clone)]
pub struct SimulatorArgs {
    #[arg(long, env = "SMSFLEET_SIMULATOR_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub sim: SimulatorSettings,
}

#[derive(Debug, Args, Clone)]
pub struct SimulatorSettings {
    /// Milliseconds between accepting a message and reporting it.
    #[arg(long, env = "SMSFLEET_SIM_DLR_LATENCY_MS", default_value_t = 50)]
    pub sim_dlr_latency_ms: u64,
    /// Destination prefixes whose reports say failed (comma list).
    #[arg(long, env = "SMSFLEET_SIM_FAIL_PREFIXES", default_value = "")]
    pub sim_fail_prefixes: String,
    /// Destination prefixes rejected at submit (comma list).
    #[arg(long, env = "SMSFLEET_SIM_REJECT_PREFIXES", default_value = "")]
    pub sim_reject_prefixes: String,
    /// Accepted messages per second, all connections together (0 = unlimited).
    #[arg(long, env = "SMSFLEET_SIM_MAX_MPS", default_value_t = 0)]
    pub sim_max_mps: u32,
    /// Accepted messages per second per connection (0 = unlimited).
    #[arg(long, env = "SMSFLEET_SIM_PER_CONNECTION_MPS", default_value_t = 0)]
    pub sim_per_connection_mps: u32,
}

#[derive(Debug, Args, Clone)]
pub struct AllArgs {
    /// Where private NATS and PostgreSQL keep their data, and the server key.
    #[arg(long, env = "SMSFLEET_DATA_DIR", default_value = ".smsfleet")]
    pub data_dir: PathBuf,
    /// Use this NATS instead of starting one.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// Use this PostgreSQL instead of starting one.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(long, env = "SMSFLEET_NAMESPACE", default_value = "smsfleet")]
    pub namespace: String,
    #[arg(long, env = "SMSFLEET_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    #[arg(long, env = "SMSFLEET_DLR_LISTEN", default_value = "127.0.0.1:8081")]
    pub dlr_listen: SocketAddr,
    #[arg(long, env = "SMSFLEET_SIMULATOR_LISTEN", default_value = "127.0.0.1:8090")]
    pub simulator_listen: SocketAddr,
    /// The built-in simulator's fake SMSC (SMPP); the default route binds to
    /// it. Port 0 (the default) takes a free one, so a real SMSC on 2775 is
    /// never in the way.
    #[arg(long, env = "SMSFLEET_SIMULATOR_SMPP_LISTEN", default_value = "127.0.0.1:0")]
    pub simulator_smpp_listen: SocketAddr,
    /// Routes; default: the built-in simulator.
    #[command(flatten)]
    pub routes: RouteArgs,
    /// The first admin's username.
    #[arg(long, env = "SMSFLEET_ADMIN_USER", default_value = "admin")]
    pub admin_user: String,
    /// The first admin's token (generated when unset).
    #[arg(long, env = "SMSFLEET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The first admin's password (generated when unset).
    #[arg(long, env = "SMSFLEET_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The key protecting tokens (read from or written to the data dir when unset).
    #[arg(long, env = "SMSFLEET_SERVER_KEY", hide_env_values = true)]
    pub server_key: Option<String>,
    #[command(flatten)]
    pub http: IngressSettings,
    #[command(flatten)]
    pub sim: SimulatorSettings,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Creates an account with webservices on and prints its token.
    Create(Box<AccountCreateArgs>),
    /// Adds (or with a negative amount deducts) credit through the ledger.
    Credit(CreditArgs),
    /// Changes what the playSMS API cannot (playSMS needs its web UI for it):
    /// token, webservices flag and IP list, password, email, name, mobile.
    Set(Box<AccountSetArgs>),
}

#[derive(Debug, Args)]
pub struct AccountSetArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, env = "SMSFLEET_SERVER_KEY", hide_env_values = true)]
    pub server_key: String,
    pub username: String,
    /// New webservices token (alphanumeric); an empty value removes it.
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long, value_enum)]
    pub webservices: Option<OnOff>,
    /// Webservices IP allow-list: single IPs, CIDR ranges or wildcards, comma-separated.
    #[arg(long = "webservices-ip")]
    pub webservices_ip: Option<String>,
    /// Sets the webservices and the bulk API password.
    #[arg(long)]
    pub password: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub mobile: Option<String>,
    /// SMPP bind password (system_id is the username), at most 8 characters.
    #[arg(long)]
    pub smpp_password: Option<String>,
    /// SMPP binds the account may hold at once, across every ingress replica.
    #[arg(long)]
    pub max_binds: Option<u32>,
    /// submit_sm per second over all the account's binds (0 = no limit); beyond it ESME_RTHROTTLED.
    #[arg(long)]
    pub smpp_throughput: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct AccountCreateArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, env = "SMSFLEET_SERVER_KEY", hide_env_values = true)]
    pub server_key: String,
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub password: Option<String>,
    /// admin, user or subuser.
    #[arg(long, default_value = "user")]
    pub role: String,
    /// Webservices IP allow-list: single IPs, CIDR ranges or wildcards, comma-separated.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Use this token instead of generating one.
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long, default_value = "")]
    pub email: String,
    /// playSMS offset like +0700, for `schedule`.
    #[arg(long, default_value = "+0000")]
    pub timezone: String,
    #[arg(long, default_value = "")]
    pub footer: String,
    /// Bulk API message template (repeatable); `{#var#}` matches 1 to 30 characters.
    #[arg(long = "template")]
    pub templates: Vec<String>,
    /// Where delivery reports of bulk `dlr=1` messages go: a URL (JSON POST,
    /// done on 2xx) or a template such as
    /// `GET http://kannel:13015/?dlr-mid={message_id}&dlr-mask={status_code} expect=2xx match=^Sent`
    /// (see README, "Delivery-report callbacks").
    #[arg(long)]
    pub dlr_callback_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreditArgs {
    #[command(flatten)]
    pub bus: BusArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub username: String,
    #[arg(long, allow_negative_numbers = true)]
    pub amount: String,
}

#[derive(Debug, Subcommand)]
pub enum RateCommand {
    /// Sets the rate per SMS part for a destination prefix, or the default.
    Set(RateSetArgs),
}

#[derive(Debug, Args)]
pub struct RateSetArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Digits; omit to set the default rate.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long)]
    pub rate: String,
}
