//! The query role against a real nats-server and PostgreSQL: messages go in
//! through the submit and status streams, answers come out of `ds` and `cr`
//! over request/reply, exactly as the ingress sees them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use smsfleet_contract::{
    Api, CreditRequest, DeliveryStatus, Destination, DsReply, DsRequest, DsRow, Encoding, SCHEMA_VERSION, StatusBatch,
    StatusEvent, StreamKind, Submission, SubmitBatch,
};
use smsfleet_domain::schedule::format_playsms;
use smsfleet_query::{QueryConfig, QueryError};
use smsfleet_testkit::{CancellationToken, TestEnv, eventually};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

/// 2026-11-18 18:13:20 UTC; fixed so datetimes are predictable.
const T: i64 = 1_795_025_600_000;
const WAIT: Duration = Duration::from_secs(15);

struct Running {
    env: TestEnv,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), QueryError>>,
}

async fn start() -> Running {
    let env = TestEnv::start().await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(smsfleet_query::run(env.context("query", &shutdown), QueryConfig::default()));
    Running { env, shutdown, task }
}

struct Sub<'a> {
    queue: &'a str,
    uid: i64,
    sender: &'a str,
    text: &'a str,
    accepted_at_ms: i64,
    schedule_at_ms: Option<i64>,
    to: &'a [(i64, &'a str)],
}

fn submission(s: &Sub<'_>) -> Submission {
    Submission {
        queue: s.queue.to_owned(),
        uid: s.uid,
        api: Api::Playsms,
        sender: s.sender.to_owned(),
        text: s.text.to_owned(),
        footer: " @alice".to_owned(),
        encoding: Encoding::Gsm7,
        flash: false,
        segments: 1,
        msg_type: "text".to_owned(),
        dlr_requested: false,
        accepted_at_ms: s.accepted_at_ms,
        schedule_at_ms: s.schedule_at_ms,
        validity_until_ms: s.accepted_at_ms + 86_400_000,
        destinations: s.to.iter().map(|&(id, to)| Destination { smslog_id: id, to: to.to_owned() }).collect(),
        traceparent: None,
    }
}

async fn submit(env: &TestEnv, batch_id: &str, subs: Vec<Submission>) {
    let batch = SubmitBatch { v: SCHEMA_VERSION, batch_id: batch_id.to_owned(), submissions: subs, deadline_ms: None };
    env.bus.publish(env.ns.subject(StreamKind::Submit), batch_id, &batch).await.unwrap();
}

async fn status(env: &TestEnv, batch_id: &str, events: Vec<StatusEvent>, released_queues: Vec<String>) {
    let batch = StatusBatch { v: SCHEMA_VERSION, batch_id: batch_id.to_owned(), events, released_queues };
    env.bus.publish(env.ns.subject(StreamKind::Status), batch_id, &batch).await.unwrap();
}

fn event(smslog_id: i64, status: DeliveryStatus, at_ms: i64) -> StatusEvent {
    StatusEvent { smslog_id, uid: 1, status, at_ms, upstream_id: None, reason: None }
}

fn req(uid: i64) -> DsRequest {
    DsRequest { uid, queue: None, src: None, dst: None, dt: None, smslog_id: None, limit: 0, last: None }
}

/// Retries until the service has subscribed (a request sent earlier gets
/// "no responders").
async fn ds(env: &TestEnv, r: &DsRequest) -> DsReply {
    eventually(WAIT, || async {
        env.bus.request(smsfleet_contract::services::DS, r, Duration::from_secs(5)).await.ok()
    })
    .await
    .expect("ds answered")
}

/// Waits until `ds` answers what `check` accepts, and returns that answer.
async fn ds_until(env: &TestEnv, r: &DsRequest, check: impl Fn(&DsReply) -> bool) -> DsReply {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = ds(env, r).await;
        if check(&reply) {
            return reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "ds never matched; last answer: {reply:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(reply: &DsReply) -> Vec<i64> {
    match reply {
        DsReply::Rows(rows) => rows.iter().map(|r| r.smslog_id).collect(),
        DsReply::Error(_) => vec![],
    }
}

fn playsms_time(ms: i64) -> String {
    format_playsms(OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap())
}

#[tokio::test]
async fn out_of_order_statuses_end_delivered_and_ds_shows_the_items() {
    let Running { env, shutdown, task } = start().await;
    let to = [(101, "628111000012"), (102, "628111000034")];
    let sub = Sub {
        queue: "q-main",
        uid: 1,
        sender: "1234",
        text: r#"with "quotes""#,
        accepted_at_ms: T,
        schedule_at_ms: None,
        to: &to,
    };
    submit(&env, "id1", vec![submission(&sub)]).await;
    // Separate batches, so the rank rule in the database is exercised too,
    // not only the coalescing within one batch.
    status(&env, "s1", vec![event(101, DeliveryStatus::Sent, T + 1_000)], vec![]).await;
    status(&env, "s2", vec![event(101, DeliveryStatus::Delivered, T + 2_000)], vec![]).await;
    status(&env, "s3", vec![event(102, DeliveryStatus::Delivered, T + 3_000)], vec![]).await;
    status(&env, "s4", vec![event(102, DeliveryStatus::Sent, T + 4_000)], vec![]).await;

    let reply = ds_until(&env, &req(1), |r| match r {
        DsReply::Rows(rows) => rows.len() == 2 && rows.iter().all(|r| r.status == 3),
        DsReply::Error(_) => false,
    })
    .await;
    let dt = playsms_time(T);
    let expected = vec![
        DsRow {
            smslog_id: 102,
            src: "1234".into(),
            dst: "628111000034".into(),
            msg: "with 'quotes'".into(),
            dt: dt.clone(),
            update: playsms_time(T + 3_000),
            status: 3,
        },
        DsRow {
            smslog_id: 101,
            src: "1234".into(),
            dst: "628111000012".into(),
            msg: "with 'quotes'".into(),
            dt,
            update: playsms_time(T + 2_000),
            status: 3,
        },
    ];
    assert_eq!(reply, DsReply::Rows(expected));

    // The queue filter finds them; an unknown queue is ERR 400.
    let by_queue = ds(&env, &DsRequest { queue: Some("q-main".into()), ..req(1) }).await;
    assert_eq!(ids(&by_queue), vec![102, 101]);
    assert_eq!(ds(&env, &DsRequest { queue: Some("nope".into()), ..req(1) }).await, DsReply::Error(400));
    // A released queue whose rows are all filtered out is ERR 402.
    let none = DsRequest { queue: Some("q-main".into()), smslog_id: Some(999), ..req(1) };
    assert_eq!(ds(&env, &none).await, DsReply::Error(402));

    // Another account sees nothing, not even that the queue exists.
    assert_eq!(ds(&env, &req(2)).await, DsReply::Error(400));
    assert_eq!(ds(&env, &DsRequest { queue: Some("q-main".into()), ..req(2) }).await, DsReply::Error(400));

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops in time");
    assert!(stopped.unwrap().is_ok());
}

#[tokio::test]
async fn scheduled_queue_is_hidden_until_released() {
    let Running { env, shutdown, task } = start().await;
    let to = [(301, "628111000012"), (302, "628111000034")];
    let at = T + 3_600_000;
    let sub = Sub {
        queue: "q-later",
        uid: 1,
        sender: "1234",
        text: "later",
        accepted_at_ms: T,
        schedule_at_ms: Some(at),
        to: &to,
    };
    submit(&env, "id1", vec![submission(&sub)]).await;

    let by_queue = DsRequest { queue: Some("q-later".into()), ..req(1) };
    ds_until(&env, &by_queue, |r| *r == DsReply::Error(401)).await;
    assert_eq!(ds(&env, &req(1)).await, DsReply::Error(400), "rows of a pending queue are not listed");
    assert_eq!(ds(&env, &DsRequest { smslog_id: Some(301), ..req(1) }).await, DsReply::Error(400));

    status(&env, "r1", vec![], vec!["q-later".into()]).await;
    let reply = ds_until(&env, &by_queue, |r| ids(r).len() == 2).await;
    let DsReply::Rows(rows) = reply else { panic!("rows expected") };
    assert_eq!(rows.iter().map(|r| r.smslog_id).collect::<Vec<_>>(), vec![302, 301]);
    // A scheduled message is dated at its release time, as in playSMS.
    assert!(rows.iter().all(|r| r.dt == playsms_time(at) && r.status == 0));

    shutdown.cancel();
    assert!(task.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_release_that_overtakes_its_submission_is_not_lost() {
    let Running { env, shutdown, task } = start().await;
    status(&env, "r1", vec![], vec!["q-race".into()]).await;
    // The placeholder belongs to nobody.
    ds_until(&env, &DsRequest { queue: Some("q-race".into()), ..req(1) }, |r| *r == DsReply::Error(400)).await;
    // Wait until the release is stored before the submission arrives.
    let released = eventually(WAIT, || async {
        let n: (i64,) = sqlx::query_as("SELECT count(*) FROM queues WHERE queue = 'q-race' AND released")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        (n.0 == 1).then_some(())
    })
    .await;
    assert!(released.is_some());

    let to = [(401, "628111000012")];
    let sub = Sub {
        queue: "q-race",
        uid: 1,
        sender: "1234",
        text: "x",
        accepted_at_ms: T,
        schedule_at_ms: Some(T + 60_000),
        to: &to,
    };
    submit(&env, "id1", vec![submission(&sub)]).await;
    let reply = ds_until(&env, &DsRequest { queue: Some("q-race".into()), ..req(1) }, |r| ids(r) == vec![401]).await;
    assert_eq!(ids(&reply), vec![401]);
    assert_eq!(ds(&env, &DsRequest { queue: Some("q-race".into()), ..req(2) }).await, DsReply::Error(400));

    shutdown.cancel();
    assert!(task.await.unwrap().is_ok());
}

#[tokio::test]
async fn filters_limit_and_last() {
    let Running { env, shutdown, task } = start().await;
    let (a, b, c) = ([(201, "628111000012")], [(202, "628222000034")], [(203, "628333000012")]);
    let subs = vec![
        submission(&Sub {
            queue: "qa",
            uid: 1,
            sender: "1234",
            text: "a",
            accepted_at_ms: T,
            schedule_at_ms: None,
            to: &a,
        }),
        submission(&Sub {
            queue: "qb",
            uid: 1,
            sender: "5678",
            text: "b",
            accepted_at_ms: T + 60_000,
            schedule_at_ms: None,
            to: &b,
        }),
        submission(&Sub {
            queue: "qc",
            uid: 1,
            sender: "1234",
            text: "c",
            accepted_at_ms: T + 120_000,
            schedule_at_ms: None,
            to: &c,
        }),
    ];
    submit(&env, "id1", subs).await;
    let all = ds_until(&env, &req(1), |r| ids(r).len() == 3).await;
    assert_eq!(ids(&all), vec![203, 202, 201], "newest first");

    let check = |r: DsRequest, want: Vec<i64>| {
        let env = &env;
        async move {
            let got = ds(env, &r).await;
            if want.is_empty() {
                assert_eq!(got, DsReply::Error(400), "{r:?}");
            } else {
                assert_eq!(ids(&got), want, "{r:?}");
            }
        }
    };
    check(DsRequest { limit: 1, ..req(1) }, vec![203]).await;
    check(DsRequest { limit: 2, ..req(1) }, vec![203, 202]).await;
    check(DsRequest { last: Some(201), ..req(1) }, vec![203, 202]).await;
    check(DsRequest { last: Some(201), limit: 1, ..req(1) }, vec![203]).await;
    check(DsRequest { smslog_id: Some(202), ..req(1) }, vec![202]).await;
    check(DsRequest { queue: Some("qa".into()), ..req(1) }, vec![201]).await;
    check(DsRequest { src: Some("1234".into()), ..req(1) }, vec![203, 201]).await;
    check(DsRequest { src: Some("123".into()), ..req(1) }, vec![]).await;
    // dst: a leading 0 or a 3-character prefix is cut, the rest is a suffix.
    check(DsRequest { dst: Some("08111000012".into()), ..req(1) }, vec![201]).await;
    check(DsRequest { dst: Some("628222000034".into()), ..req(1) }, vec![202]).await;
    check(DsRequest { dst: Some("99912".into()), ..req(1) }, vec![203, 201]).await;
    check(DsRequest { dst: Some("999%".into()), ..req(1) }, vec![]).await;
    // dt: a substring of the UTC datetime text.
    let minute_b = playsms_time(T + 60_000)[..16].to_owned();
    check(DsRequest { dt: Some(minute_b.clone()), ..req(1) }, vec![202]).await;
    check(DsRequest { dt: Some(playsms_time(T)[..10].to_owned()), ..req(1) }, vec![203, 202, 201]).await;
    check(DsRequest { dt: Some("_".into()), ..req(1) }, vec![]).await;
    // dst and dt are OR-ed, as in playSMS.
    check(DsRequest { dst: Some("99934".into()), dt: Some(playsms_time(T)), ..req(1) }, vec![202, 201]).await;

    shutdown.cancel();
    assert!(task.await.unwrap().is_ok());
}

#[tokio::test]
async fn credit_is_the_ledger_balance() {
    let Running { env, shutdown, task } = start().await;
    let cr = |uid| {
        let env = &env;
        async move {
            eventually(WAIT, || async {
                env.bus
                    .request(smsfleet_contract::services::CREDIT, &CreditRequest { uid }, Duration::from_secs(5))
                    .await
                    .ok()
            })
            .await
            .expect("cr answered")
            .balance
        }
    };
    assert_eq!(cr(12_345).await, "0");

    let account = env.create_user("alice").await;
    assert_eq!(cr(account.uid).await, "0");
    sqlx::query("UPDATE balances SET balance = 12.5 WHERE uid = $1")
        .bind(account.uid)
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(cr(account.uid).await, "12.5");

    shutdown.cancel();
    assert!(task.await.unwrap().is_ok());
}

#[tokio::test]
async fn phonebook_searches_own_contacts_and_groups() {
    use smsfleet_contract::{ContactItem, GroupItem, PhonebookReply, PhonebookRequest};
    use smsfleet_store::phonebook::{self as pb, ImportContact};

    let Running { env, shutdown, task } = start().await;
    let alice = env.create_user("alice").await;
    let bob = env.create_user("bob").await;
    let contact = |name: &str, mobile: &str, email: &str, tags: &str, groups: &[&str]| ImportContact {
        name: name.into(),
        mobile: mobile.into(),
        email: email.into(),
        tags: tags.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    };
    pb::add_group(&env.pool, alice.uid, "FRIENDS", "Friends").await.unwrap();
    pb::add_group(&env.pool, alice.uid, "FAMILY", "Family").await.unwrap();
    let book = [
        contact("Andy Friend", "+628111000101", "andy@example.com", "friend", &["FRIENDS"]),
        contact("Anita Friend", "08111000102", "anita@example.com", "", &["FRIENDS"]),
        contact("Other Person", "628111000103", "", "", &[]),
    ];
    pb::import(&env.pool, alice.uid, &book, 100).await.unwrap();
    pb::import(&env.pool, bob.uid, &[contact("Bob's Friend", "628111000999", "", "", &[])], 100).await.unwrap();

    let ask = |req: PhonebookRequest| {
        let env = &env;
        async move {
            eventually(WAIT, || async {
                env.bus.request(smsfleet_contract::services::PHONEBOOK, &req, Duration::from_secs(5)).await.ok()
            })
            .await
            .expect("phonebook answered")
        }
    };
    let contacts = |keyword: &str, limit| PhonebookRequest::Contacts { uid: alice.uid, keyword: keyword.into(), limit };
    let names = |reply: PhonebookReply| match reply {
        PhonebookReply::Contacts(items) => items.into_iter().map(|c| c.p_desc).collect::<Vec<_>>(),
        other => panic!("unexpected {other:?}"),
    };

    let PhonebookReply::Contacts(found) = ask(contacts("FRIEND", 0)).await else { panic!("contacts expected") };
    assert_eq!(
        found[0],
        ContactItem {
            pid: found[0].pid,
            p_desc: "Andy Friend".into(),
            p_num: "+628111000101".into(),
            email: "andy@example.com".into(),
            tags: "friend".into()
        }
    );
    assert_eq!(found.len(), 2, "bob's friend is not alice's");
    assert_eq!(names(ask(contacts("friend", 1)).await), vec!["Andy Friend"]);
    assert_eq!(names(ask(contacts("a", 0)).await), vec!["Andy Friend", "Anita Friend"]);
    assert_eq!(names(ask(contacts("103", 0)).await), vec!["Other Person"]);
    assert!(names(ask(contacts("", 0)).await).is_empty());
    assert!(names(ask(contacts("zzzz", 0)).await).is_empty());

    let groups = ask(PhonebookRequest::Groups { uid: alice.uid, keyword: "fri".into(), limit: 0 }).await;
    let PhonebookReply::Groups(groups) = groups else { panic!("groups expected") };
    assert_eq!(
        groups,
        vec![GroupItem { gpid: groups[0].gpid, group_name: "Friends".into(), code: "FRIENDS".into(), flag_sender: 0 }]
    );
    let fa = ask(PhonebookRequest::Groups { uid: alice.uid, keyword: "FA".into(), limit: 0 }).await;
    assert!(matches!(fa, PhonebookReply::Groups(g) if g.len() == 1 && g[0].code == "FAMILY"));

    shutdown.cancel();
    assert!(task.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_nul_that_reaches_the_projection_is_stored_replaced_not_dead_lettered() {
    let Running { env, shutdown, task } = start().await;
    let to = [(301, "628111000099")];
    let sub =
        Sub { queue: "q-nul", uid: 1, sender: "12\0", text: "a\0b", accepted_at_ms: T, schedule_at_ms: None, to: &to };
    submit(&env, "nul1", vec![submission(&sub)]).await;
    let reply = ds_until(&env, &req(1), |r| !ids(r).is_empty()).await;
    let rows = match reply {
        DsReply::Rows(rows) => rows,
        other => panic!("{other:?}"),
    };
    assert_eq!((rows[0].msg.as_str(), rows[0].src.as_str()), ("a\u{FFFD}b", "12\u{FFFD}"));
    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops in time");
    assert!(stopped.unwrap().is_ok());
}

/// Issue 12.4: with the id counter lost (a fresh IDS stream) but rows kept
/// in Postgres, the query role raises the counter above the largest stored
/// id at or below 2^53 − 1, so no stored id is issued again; snowflakes from
/// before (above 2^53) are left alone.
#[tokio::test]
async fn the_id_counter_is_raised_above_the_stored_ids_at_start() {
    let env = TestEnv::start().await;
    for id in [7_000_000_i64, 386_319_617_521_065_984] {
        sqlx::query(
            "INSERT INTO outgoing (smslog_id, uid, updated_at, status, status_rank) VALUES ($1, 1, now(), 0, 0)",
        )
        .bind(id)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(smsfleet_query::run(env.context("query", &shutdown), QueryConfig::default()));
    let first = eventually(WAIT, || async {
        let blocks = smsfleet_bus::IdBlocks::start(&env.bus).await.ok()?;
        let id = blocks.issuer().next_ids(1).await?[0].0;
        (id > 7_000_000).then_some(id)
    })
    .await;
    assert!(first.is_some_and(|id| id <= smsfleet_domain::ids::MAX_ID), "{first:?}");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
