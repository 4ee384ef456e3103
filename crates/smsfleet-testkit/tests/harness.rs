#![allow(clippy::unwrap_used)]

#[tokio::test]
async fn two_envs_are_isolated_and_real() {
    let a = smsfleet_testkit::TestEnv::start().await;
    let b = smsfleet_testkit::TestEnv::start().await;
    assert_ne!(a.ns, b.ns);
    assert_ne!(a.database_url, b.database_url);
    assert!(smsfleet_store::ping(&a.pool).await);
    assert!(a.bus.is_connected());
}
