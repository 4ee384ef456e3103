//! Admin ops that change accounts, seen from every ingress replica.

use std::time::{Duration, Instant};

use smsfleet_testkit::eventually;

use crate::fleet::Fleet;

/// A banned account's next request fails on the replica that banned it
/// and, within a second, on another replica; unbanning restores it. The
/// playSMS codes for each failure come back as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_reaches_every_ingress_replica_within_a_second() {
    let mut f = Fleet::start(&[]).await;
    let other = f.spawn_ingress_replica().await;
    let admin_out =
        f.cli(&["account", "create", "--username", "boss", "--password", "bosspass1", "--role", "admin"]).await;
    let admin = admin_out.split("token=").nth(1).unwrap().trim().to_owned();
    let user = f.user("dave").await;
    let sub_out =
        f.cli(&["account", "create", "--username", "sam", "--password", "sampass12", "--role", "subuser"]).await;
    let sub = sub_out.split("token=").nth(1).unwrap().trim().to_owned();
    for base in [f.ingress.clone(), other.clone()] {
        let ready = eventually(Duration::from_secs(5), || async {
            let a = f.ws_at(&base, &[("u", "boss"), ("h", &admin), ("op", "cr")]).await;
            let u = f.ws_at(&base, &[("u", "dave"), ("h", &user), ("op", "cr")]).await;
            let s = f.ws_at(&base, &[("u", "sam"), ("h", &sub), ("op", "cr")]).await;
            (a["status"] == "OK" && u["status"] == "OK" && s["status"] == "OK").then_some(())
        })
        .await;
        assert!(ready.is_some(), "accounts not visible on {base}");
    }
    // sam is dave's subuser: dave's ban shuts sam out too (issue 12.7).
    let r = f
        .ws(&[("u", "boss"), ("h", &admin), ("op", "parentset"), ("data_username", "sam"), ("data_parent", "dave")])
        .await;
    assert_eq!(r["status"], "OK", "{r}");
    for base in [f.ingress.clone(), other.clone()] {
        let known = eventually(Duration::from_secs(5), || async {
            let r =
                f.ws_at(&base, &[("u", "boss"), ("h", &admin), ("op", "parentget"), ("data_username", "sam")]).await;
            (r["parent"] == "dave").then_some(())
        })
        .await;
        assert!(known.is_some(), "sam's parent not known on {base}");
    }

    // Not an admin: 600.
    let r = f.ws(&[("u", "dave"), ("h", &user), ("op", "accountban"), ("data_username", "boss")]).await;
    assert_eq!(r["error"], "600");
    // Unknown account: 611 / 613; the first account cannot be banned: 612.
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountban"), ("data_username", "nobody")]).await;
    assert_eq!(r["error"], "611");
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountunban"), ("data_username", "nobody")]).await;
    assert_eq!(r["error"], "613");
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountunban"), ("data_username", "dave")]).await;
    assert_eq!(r["error"], "614", "not banned yet");
    let first = smsfleet_store::accounts::by_username(&f.env.pool, "boss").await.unwrap().unwrap();
    assert_eq!(first.uid, 1);
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountban"), ("data_username", "boss")]).await;
    assert_eq!(r["error"], "612", "the first account is immune");

    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountban"), ("data_username", "dave")]).await;
    assert_eq!(r["status"], "OK", "{r}");
    let banned = Instant::now();
    let here = f.ws(&[("u", "dave"), ("h", &user), ("op", "cr")]).await;
    assert_eq!(here["error"], "100", "the banning replica refuses at once");
    let there = eventually(Duration::from_secs(5), || async {
        let r = f.ws_at(&other, &[("u", "dave"), ("h", &user), ("op", "cr")]).await;
        (r["error"] == "100").then_some(())
    })
    .await;
    assert!(there.is_some());
    assert!(banned.elapsed() < Duration::from_secs(1), "took {:?}", banned.elapsed());
    let sam_here = f.ws(&[("u", "sam"), ("h", &sub), ("op", "cr")]).await;
    assert_eq!(sam_here["error"], "100", "a banned parent's subuser is refused at once");
    let sam_there = eventually(Duration::from_secs(5), || async {
        let r = f.ws_at(&other, &[("u", "sam"), ("h", &sub), ("op", "cr")]).await;
        (r["error"] == "100").then_some(())
    })
    .await;
    assert!(sam_there.is_some(), "and on the other replica");
    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountban"), ("data_username", "dave")]).await;
    assert_eq!(r["status"], "OK", "banning twice is fine");

    let r = f.ws(&[("u", "boss"), ("h", &admin), ("op", "accountunban"), ("data_username", "dave")]).await;
    assert_eq!(r["status"], "OK");
    let back = eventually(Duration::from_secs(5), || async {
        let r = f.ws_at(&other, &[("u", "dave"), ("h", &user), ("op", "cr")]).await;
        (r["status"] == "OK").then_some(())
    })
    .await;
    assert!(back.is_some());
    for base in [f.ingress.clone(), other.clone()] {
        let sam_back = eventually(Duration::from_secs(5), || async {
            let r = f.ws_at(&base, &[("u", "sam"), ("h", &sub), ("op", "cr")]).await;
            (r["status"] == "OK").then_some(())
        })
        .await;
        assert!(sam_back.is_some(), "the parent's unban lets its subuser back in on {base}");
    }
}
