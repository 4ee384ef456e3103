//! The real ingress on a `127.0.0.1:0` listener against the testkit's
//! nats-server, shared by the HTTP test files. Accounts reach the ingress
//! the way they do in production: on the state stream.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use smsfleet_contract::{AccountState, BalanceState, GroupState, SCHEMA_VERSION, StopState, StreamKind, SubmitBatch};
use smsfleet_domain::account::Role;
use smsfleet_ingress::IngressConfig;
use smsfleet_secrets::{Secrets, generate_token, hash_password};
use smsfleet_testkit::{CancellationToken, TestEnv};

pub struct Ingress {
    pub env: TestEnv,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Ingress {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub const BULK_PASSWORD: &str = "bulk-secret";

/// A user with webservices on from 127.0.0.1, `token` and [`BULK_PASSWORD`].
pub fn account(secrets: &Secrets, uid: i64, username: &str, token: &str) -> AccountState {
    AccountState {
        v: SCHEMA_VERSION,
        uid,
        revision: 1,
        username: username.into(),
        email: String::new(),
        name: String::new(),
        mobile: String::new(),
        role: Role::User,
        parent_uid: None,
        banned: false,
        deleted: false,
        webservices_enabled: true,
        webservices_ip: "127.0.0.1".into(),
        token_lookup: Some(secrets.token_lookup(token)),
        token_sealed: Some(secrets.seal(token)),
        password_hash: None,
        bulk_password_hash: Some(hash_password(BULK_PASSWORD).unwrap()),
        timezone: "+0000".into(),
        footer: String::new(),
        sender: String::new(),
        templates: Vec::new(),
        dlr_callback_url: None,
        smpp_password_hash: None,
        smpp_max_binds: 2,
        smpp_throughput: 0,
    }
}

/// One entry of the state stream, as the accounts role and the ledger
/// publish them.
pub enum State {
    Account(Box<AccountState>),
    Balance(BalanceState),
    Group(GroupState),
    Stop(StopState),
}

pub async fn publish(env: &TestEnv, state: &State) {
    let (bus, ns) = (&env.bus, &env.ns);
    match state {
        State::Account(a) => bus.publish_state(ns.account_state_subject(a.uid), a.as_ref()).await,
        State::Balance(b) => bus.publish_state(ns.balance_state_subject(b.uid), b).await,
        State::Group(g) => bus.publish_state(ns.group_state_subject(g.uid, g.gpid), g).await,
        State::Stop(e) => bus.publish_state(ns.stop_state_subject(&e.number), e).await,
    }
    .unwrap();
}

impl Ingress {
    /// An ingress that knows `alice` (webservices from 127.0.0.1, a token
    /// and a bulk password). Requests sent before it serves wait in the
    /// listener's backlog, so nothing here polls for readiness.
    pub async fn start() -> Ingress {
        Ingress::start_with(|_| Vec::new()).await
    }

    /// Like [`Ingress::start`], with more state (accounts, balances, groups,
    /// the stop list) on the state stream before the ingress replays it.
    pub async fn start_with(more_state: impl FnOnce(&Secrets) -> Vec<State>) -> Ingress {
        Ingress::start_configured(IngressConfig::default(), more_state).await
    }

    /// [`Ingress::start_with`] under `config`.
    pub async fn start_configured(config: IngressConfig, more_state: impl FnOnce(&Secrets) -> Vec<State>) -> Ingress {
        let env = TestEnv::start().await;
        let secrets = Secrets::from_hex(&Secrets::generate_key()).unwrap();
        let token = generate_token();
        let alice = account(&secrets, 2, "alice", &token);
        env.bus.publish_state(env.ns.account_state_subject(alice.uid), &alice).await.unwrap();
        for state in more_state(&secrets) {
            publish(&env, &state).await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let ctx = env.context("ingress", &shutdown).with_secrets(secrets).with_listener(listener);
        tokio::spawn(smsfleet_ingress::run(ctx, config));
        Ingress { env, base, token, http: reqwest::Client::new(), shutdown }
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.http.get(format!("{}{path_and_query}", self.base)).send().await.unwrap()
    }

    pub async fn submit_stream(&self) -> async_nats::jetstream::stream::Stream {
        self.env.bus.jetstream().get_stream(self.env.ns.stream_name(StreamKind::Submit)).await.unwrap()
    }

    pub async fn stored_batches(&self) -> u64 {
        self.submit_stream().await.info().await.unwrap().state.messages
    }

    pub async fn last_batch(&self) -> SubmitBatch {
        let stream = self.submit_stream().await;
        let stored = stream.get_last_raw_message_by_subject(&self.env.ns.subject(StreamKind::Submit)).await.unwrap();
        serde_json::from_slice(&stored.payload).unwrap()
    }
}
