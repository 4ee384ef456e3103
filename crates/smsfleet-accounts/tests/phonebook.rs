//! The phonebook's write side against a real PostgreSQL and nats-server:
//! import is all-or-nothing and idempotent per (account, mobile), searches
//! match like playSMS, and every change reaches the state stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smsfleet_accounts::phonebook::{self, PhonebookError};
use smsfleet_bus::{StateEvent, StateFeed};
use smsfleet_contract::GroupState;
use smsfleet_store::StoreError;
use smsfleet_store::phonebook as store;
use smsfleet_testkit::{TestEnv, eventually};

const ALICE_CSV: &str = "name,mobile,email,tags,groups\n\
    Andy Friend,+628111000101,andy@example.com,friend,FRIENDS\n\
    Anita Friend,08111000102,anita@example.com,,friends\n\
    Other Person,628111000103,,,\n";

type Seen = Arc<Mutex<HashMap<i64, GroupState>>>;

/// Follows the state stream, keeping the latest group snapshot per gpid.
async fn follow_groups(env: &TestEnv) -> (Seen, StateFeed) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let mut feed = StateFeed::start(&env.bus, move |e| {
        if let StateEvent::Group(g) = e {
            s.lock().unwrap().insert(g.gpid, g);
        }
    })
    .await
    .unwrap();
    feed.wait_caught_up(Duration::from_secs(10)).await.unwrap();
    (seen, feed)
}

#[tokio::test]
async fn import_is_idempotent_searchable_and_published() {
    let env = TestEnv::start().await;
    let alice = env.create_user("alice").await;
    let bob = env.create_user("bob").await;
    let (seen, _feed) = follow_groups(&env).await;

    let family = phonebook::add_group(&env.pool, &env.bus, alice.uid, "family", "Family").await.unwrap();
    assert_eq!(family.code, "FAMILY");
    let rows = phonebook::parse_csv(ALICE_CSV.as_bytes()).unwrap();
    let first = phonebook::import(&env.pool, &env.bus, alice.uid, &rows).await.unwrap();
    assert_eq!(first.contacts, 3);
    assert_eq!(first.created_groups, vec!["FRIENDS"]);
    let contacts = store::contacts_of(&env.pool, alice.uid).await.unwrap();
    let pids: Vec<i64> = contacts.iter().map(|c| c.pid).collect();

    // The same file again: same contacts, same ids, nothing new.
    let again = phonebook::import(&env.pool, &env.bus, alice.uid, &rows).await.unwrap();
    assert!(again.created_groups.is_empty());
    assert_eq!(store::contacts_of(&env.pool, alice.uid).await.unwrap(), contacts);
    // A changed row updates its contact in place.
    let changed = phonebook::parse_csv("mobile,name,tags,groups\n628111000103,Other P,x,FRIENDS\n".as_bytes()).unwrap();
    phonebook::import(&env.pool, &env.bus, alice.uid, &changed).await.unwrap();
    let now = store::contacts_of(&env.pool, alice.uid).await.unwrap();
    assert_eq!(now.iter().map(|c| c.pid).collect::<Vec<_>>(), pids);
    assert_eq!((now[2].name.as_str(), now[2].tags.as_str(), now[2].email.as_str()), ("Other P", "x", ""));

    // Searches: case-insensitive substrings, own phonebook only.
    let found = store::search_contacts(&env.pool, alice.uid, "FRIEND", 100).await.unwrap();
    assert_eq!(found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["Andy Friend", "Anita Friend"]);
    assert_eq!(store::search_contacts(&env.pool, alice.uid, "friend", 1).await.unwrap().len(), 1);
    assert_eq!(store::search_contacts(&env.pool, alice.uid, "0102", 100).await.unwrap()[0].name, "Anita Friend");
    assert!(store::search_contacts(&env.pool, alice.uid, "%", 100).await.unwrap().is_empty(), "% is literal");
    assert!(store::search_contacts(&env.pool, bob.uid, "friend", 100).await.unwrap().is_empty());
    let groups = store::search_groups(&env.pool, alice.uid, "fri", 100).await.unwrap();
    let names: Vec<(&str, &str)> = groups.iter().map(|g| (g.name.as_str(), g.code.as_str())).collect();
    assert_eq!(names, vec![("FRIENDS", "FRIENDS")], "created by the import, named after its code");
    assert_eq!(store::search_groups(&env.pool, alice.uid, "FA", 100).await.unwrap()[0].name, "Family");

    // The ingress's view: FRIENDS with its three members, FAMILY empty.
    let friends = groups[0].gpid;
    let published = eventually(Duration::from_secs(5), || async {
        let g = seen.lock().unwrap().get(&friends).cloned()?;
        (g.members.len() == 3).then_some(g)
    })
    .await
    .expect("FRIENDS published");
    assert_eq!(published.members, vec!["+628111000101", "08111000102", "628111000103"]);
    assert_eq!((published.uid, published.code.as_str(), published.deleted), (alice.uid, "FRIENDS", false));
    assert!(seen.lock().unwrap().get(&family.gpid).is_some_and(|g| g.members.is_empty()));

    // Removal publishes a tombstone with a higher revision; contacts stay.
    let removed = phonebook::remove_group(&env.pool, &env.bus, alice.uid, "Friends").await.unwrap();
    assert_eq!(removed.gpid, friends);
    let gone = eventually(Duration::from_secs(5), || async {
        seen.lock().unwrap().get(&friends).filter(|g| g.deleted).cloned()
    })
    .await
    .expect("removal published");
    assert!(gone.revision > published.revision);
    assert_eq!(store::contacts_of(&env.pool, alice.uid).await.unwrap().len(), 3);
    assert!(matches!(
        phonebook::remove_group(&env.pool, &env.bus, alice.uid, "FRIENDS").await,
        Err(PhonebookError::Invalid(_))
    ));

    // The accounts role's start-up republishes every remaining group.
    seen.lock().unwrap().clear();
    smsfleet_accounts::publish_all(&env.bus, &env.pool).await.unwrap();
    let republished =
        eventually(Duration::from_secs(5), || async { seen.lock().unwrap().get(&family.gpid).map(|g| g.code.clone()) })
            .await;
    assert_eq!(republished.as_deref(), Some("FAMILY"));
}

#[tokio::test]
async fn a_failing_import_writes_nothing() {
    let env = TestEnv::start().await;
    let alice = env.create_user("alice").await;
    let rows = phonebook::parse_csv(ALICE_CSV.as_bytes()).unwrap();
    // With room for one member only, FRIENDS (two) fails after the contacts
    // were inserted: the transaction must take them back.
    let err = store::import(&env.pool, alice.uid, &rows, 1).await.unwrap_err();
    match err {
        StoreError::Invalid(msg) => assert!(msg.contains("group FRIENDS would have 2 members"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(store::contacts_of(&env.pool, alice.uid).await.unwrap().is_empty());
    assert!(store::groups_of(&env.pool, alice.uid).await.unwrap().is_empty());
    // The same rows within the limit go in.
    let ok = store::import(&env.pool, alice.uid, &rows, 2).await.unwrap();
    assert_eq!(ok.contacts, 3);
}

/// The biggest group allowed, with the longest numbers, is still one state
/// message under NATS's default 1 MB payload; one more member is refused.
#[tokio::test]
async fn the_largest_group_fits_one_state_message() {
    let env = TestEnv::start().await;
    let alice = env.create_user("alice").await;
    let (seen, _feed) = follow_groups(&env).await;
    let mut csv = String::from("mobile,groups\n");
    for i in 0..phonebook::MAX_GROUP_MEMBERS {
        csv.push_str(&format!("+6281110{i:013},BIG\n"));
    }
    let rows = phonebook::parse_csv(csv.as_bytes()).unwrap();
    let started = std::time::Instant::now();
    phonebook::import(&env.pool, &env.bus, alice.uid, &rows).await.unwrap();
    eprintln!("imported {} contacts in {:?}", rows.len(), started.elapsed());
    let gpid = store::groups_of(&env.pool, alice.uid).await.unwrap()[0].group.gpid;
    let size = eventually(Duration::from_secs(10), || async {
        seen.lock().unwrap().get(&gpid).map(|g| g.members.len()).filter(|n| *n == phonebook::MAX_GROUP_MEMBERS)
    })
    .await;
    assert!(size.is_some(), "the full group was published");

    let one_more = phonebook::parse_csv("mobile,groups\n628111000001,big\n".as_bytes()).unwrap();
    let err = phonebook::import(&env.pool, &env.bus, alice.uid, &one_more).await.unwrap_err();
    assert!(err.to_string().contains("at most 20000"), "{err}");
    assert_eq!(store::contacts_of(&env.pool, alice.uid).await.unwrap().len(), phonebook::MAX_GROUP_MEMBERS);
}
