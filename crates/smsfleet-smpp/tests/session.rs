//! The session layer against itself (client bind ↔ server accept) and
//! against raw bytes, over real TCP loopback sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use smsfleet_smpp::{
    BindKind, CloseReason, SessionConfig, SessionError,
    client::{self, BindConfig, BindError},
    rusmpp::{
        Command, CommandId, CommandStatus, Pdu,
        pdus::{SubmitSm, SubmitSmResp},
        tokio_codec::CommandCodec,
        types::COctetString,
    },
    server::{self, AcceptError},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::codec::Encoder;

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}

fn quick() -> SessionConfig {
    SessionConfig {
        window: 4,
        enquire_link_interval: None,
        response_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    }
}

fn submit(text: &str) -> SubmitSm {
    SubmitSm::builder()
        .destination_addr(COctetString::from_str("6281234").unwrap())
        .short_message(smsfleet_smpp::rusmpp::types::OctetString::from_str(text).unwrap())
        .build()
}

use std::str::FromStr;

#[tokio::test]
async fn bind_submit_respond_and_unbind() {
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let (mut session, req) = server::accept(s, quick(), "smsc", |req| {
            let ok = req.system_id == "esme" && req.password == "pw";
            async move { if ok { CommandStatus::EsmeRok } else { CommandStatus::EsmeRinvpaswd } }
        })
        .await
        .unwrap();
        assert_eq!(req.kind, BindKind::Transceiver);
        let mut n = 0;
        while let Some(inbound) = session.inbound.recv().await {
            assert_eq!(inbound.command.id(), CommandId::SubmitSm);
            n += 1;
            let id = COctetString::from_str(&format!("id{n}")).unwrap();
            inbound.responder.respond(SubmitSmResp::builder().message_id(id).build()).await.unwrap();
        }
        (n, session.handle.closed().await)
    });
    let bind = BindConfig::new(BindKind::Transceiver, "esme", "pw", "").unwrap();
    let session = client::bind(c, &bind, quick()).await.unwrap();
    assert_eq!(session.handle.bound_as(), Some(BindKind::Transceiver));
    for i in 1..=3 {
        let resp = session.handle.request(submit("hi")).await.unwrap();
        assert_eq!(resp.status(), CommandStatus::EsmeRok);
        let Some(Pdu::SubmitSmResp(r)) = resp.pdu() else { panic!("{resp:?}") };
        assert_eq!(r.message_id().as_str(), format!("id{i}"));
    }
    session.handle.unbind().await.unwrap();
    assert_eq!(session.handle.closed().await, CloseReason::Unbound);
    let (n, reason) = server.await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(reason, CloseReason::PeerUnbound);
}

#[tokio::test]
async fn refused_bind_reports_the_status() {
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        server::accept(s, quick(), "smsc", |_| async { CommandStatus::EsmeRinvpaswd }).await.map(|_| ())
    });
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "bad", "").unwrap();
    let err = client::bind(c, &bind, quick()).await.unwrap_err();
    assert_eq!(err, BindError::Refused(CommandStatus::EsmeRinvpaswd));
    assert_eq!(server.await.unwrap().unwrap_err(), AcceptError::Refused(CommandStatus::EsmeRinvpaswd));
}

#[tokio::test]
async fn never_more_than_the_window_outstanding() {
    let (c, s) = pair().await;
    let outstanding = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (o, p) = (outstanding.clone(), peak.clone());
    let server_cfg = SessionConfig { inbound_window: 100, ..quick() };
    tokio::spawn(async move {
        let (mut session, _) =
            server::accept(s, server_cfg, "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        let mut held = Vec::new();
        while let Some(inbound) = session.inbound.recv().await {
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            held.push(inbound.responder);
            // Answer in bursts so the client has to wait on its window.
            if held.len() == 4 || now >= 4 {
                for r in held.drain(..) {
                    o.fetch_sub(1, Ordering::SeqCst);
                    r.respond(SubmitSmResp::builder().message_id(COctetString::from_str("x").unwrap()).build())
                        .await
                        .unwrap();
                }
            }
        }
    });
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    let session = client::bind(c, &bind, quick()).await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..40 {
        pending.push(session.handle.send(submit("x")).await.unwrap());
        assert!(session.handle.in_flight() <= 4);
        if pending.len() == 4 {
            for p in pending.drain(..) {
                assert_eq!(p.response().await.unwrap().status(), CommandStatus::EsmeRok);
            }
        }
    }
    assert_eq!(peak.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn dead_link_is_detected_within_interval_plus_timeout() {
    let (c, mut s) = pair().await;
    // A peer that answers the bind and then nothing at all.
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        let _ = s.read(&mut buf).await;
        let seq = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]);
        let resp = Command::new(
            CommandStatus::EsmeRok,
            seq,
            smsfleet_smpp::rusmpp::pdus::BindTransmitterResp::builder()
                .system_id(COctetString::from_str("smsc").unwrap())
                .build(),
        );
        let mut out = bytes::BytesMut::new();
        CommandCodec::new().encode(resp, &mut out).unwrap();
        s.write_all(&out).await.unwrap();
        loop {
            if s.read(&mut buf).await.unwrap_or(0) == 0 {
                break;
            }
        }
    });
    let config = SessionConfig {
        enquire_link_interval: Some(Duration::from_secs(10)),
        response_timeout: Duration::from_secs(3),
        ..quick()
    };
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    let session = client::bind(c, &bind, config).await.unwrap();
    let started = tokio::time::Instant::now();
    let reason = session.handle.closed().await;
    assert_eq!(reason, CloseReason::LinkDead(Duration::from_secs(3)));
    // Paused clock: exact, not a wall-clock timing assertion.
    assert!(started.elapsed() <= Duration::from_secs(13) + Duration::from_millis(100));
}

#[tokio::test]
async fn garbage_gets_generic_nack_and_the_session_survives() {
    let (mut c, s) = pair().await;
    tokio::spawn(async move {
        let (mut session, _) = server::accept(s, quick(), "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        while let Some(inbound) = session.inbound.recv().await {
            inbound
                .responder
                .respond(SubmitSmResp::builder().message_id(COctetString::from_str("ok").unwrap()).build())
                .await
                .unwrap();
        }
    });
    let mut out = bytes::BytesMut::new();
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    CommandCodec::new().encode(Command::new(CommandStatus::EsmeRok, 1, bind.to_pdu()), &mut out).unwrap();
    // An unknown command id, then a submit_sm whose body is cut short.
    out.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0x77, 0x77, 0, 0, 0, 0, 0, 0, 0, 2]);
    out.extend_from_slice(&[0, 0, 0, 20, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', b'd']);
    CommandCodec::new().encode(Command::new(CommandStatus::EsmeRok, 4, submit("ok")), &mut out).unwrap();
    c.write_all(&out).await.unwrap();
    let frames = read_frames(&mut c, 4).await;
    let got: Vec<_> = frames.iter().map(|f| (f.id(), f.status(), f.sequence_number())).collect();
    assert_eq!(
        got,
        vec![
            (CommandId::BindTransmitterResp, CommandStatus::EsmeRok, 1),
            (CommandId::GenericNack, CommandStatus::EsmeRinvcmdid, 2),
            (CommandId::GenericNack, CommandStatus::EsmeRinvcmdlen, 3),
            (CommandId::SubmitSmResp, CommandStatus::EsmeRok, 4),
        ]
    );
}

#[tokio::test]
async fn submit_before_bind_and_over_the_inbound_window_are_refused_by_the_session() {
    let (mut c, s) = pair().await;
    let cfg = SessionConfig { inbound_window: 1, ..quick() };
    tokio::spawn(async move {
        let (mut session, _) = server::accept(s, cfg, "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        // Holds the first submit unanswered for the rest of the test.
        let _held = session.inbound.recv().await;
        session.handle.closed().await;
    });
    let mut out = bytes::BytesMut::new();
    let mut codec = CommandCodec::new();
    codec.encode(Command::new(CommandStatus::EsmeRok, 1, submit("early")), &mut out).unwrap();
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    codec.encode(Command::new(CommandStatus::EsmeRok, 2, bind.to_pdu()), &mut out).unwrap();
    codec.encode(Command::new(CommandStatus::EsmeRok, 3, submit("held")), &mut out).unwrap();
    codec.encode(Command::new(CommandStatus::EsmeRok, 4, submit("over")), &mut out).unwrap();
    codec.encode(Command::new(CommandStatus::EsmeRok, 5, Pdu::EnquireLink), &mut out).unwrap();
    c.write_all(&out).await.unwrap();
    let frames = read_frames(&mut c, 4).await;
    let got: Vec<_> = frames.iter().map(|f| (f.id(), f.status(), f.sequence_number())).collect();
    assert_eq!(
        got,
        vec![
            (CommandId::SubmitSmResp, CommandStatus::EsmeRinvbndsts, 1),
            (CommandId::BindTransmitterResp, CommandStatus::EsmeRok, 2),
            (CommandId::SubmitSmResp, CommandStatus::EsmeRthrottled, 4),
            (CommandId::EnquireLinkResp, CommandStatus::EsmeRok, 5),
        ]
    );
}

#[tokio::test]
async fn a_dropped_responder_answers_rsyserr() {
    let (c, s) = pair().await;
    tokio::spawn(async move {
        let (mut session, _) = server::accept(s, quick(), "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        while let Some(inbound) = session.inbound.recv().await {
            drop(inbound);
        }
    });
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    let session = client::bind(c, &bind, quick()).await.unwrap();
    let resp = session.handle.request(submit("x")).await.unwrap();
    assert_eq!(resp.status(), CommandStatus::EsmeRsyserr);
}

#[tokio::test(start_paused = true)]
async fn response_timeout_frees_the_window_slot() {
    let (c, s) = pair().await;
    tokio::spawn(async move {
        let (mut session, _) = server::accept(s, quick(), "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        let mut held = Vec::new();
        while let Some(inbound) = session.inbound.recv().await {
            held.push(inbound);
        }
    });
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    let session = client::bind(c, &bind, quick()).await.unwrap();
    let err = session.handle.request(submit("x")).await.unwrap_err();
    assert_eq!(err, SessionError::Timeout(Duration::from_secs(5)));
    assert_eq!(session.handle.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_paces_requests() {
    let (c, s) = pair().await;
    tokio::spawn(async move {
        let cfg = SessionConfig { inbound_window: 1000, ..quick() };
        let (mut session, _) = server::accept(s, cfg, "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        while let Some(inbound) = session.inbound.recv().await {
            let _ = inbound
                .responder
                .respond(SubmitSmResp::builder().message_id(COctetString::from_str("x").unwrap()).build())
                .await;
        }
    });
    let bind = BindConfig::new(BindKind::Transmitter, "esme", "", "").unwrap();
    let cfg = SessionConfig { rate_per_sec: Some(50.0), window: 100, ..quick() };
    let session = client::bind(c, &bind, cfg).await.unwrap();
    let start = tokio::time::Instant::now();
    let mut sent = 0;
    // Count over a 10 s window of (paused, so exact) time.
    while start.elapsed() < Duration::from_secs(10) {
        let p = session.handle.send(submit("x")).await.unwrap();
        if start.elapsed() < Duration::from_secs(10) {
            sent += 1;
        }
        tokio::spawn(p.response());
    }
    assert!((475..=525).contains(&sent), "{sent} in 10 s at 50/s");
}

async fn read_frames(c: &mut TcpStream, n: usize) -> Vec<Command> {
    use futures_util::StreamExt;
    let mut framed = tokio_util::codec::FramedRead::new(c, CommandCodec::new());
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), framed.next()).await {
            Ok(Some(Ok(cmd))) => out.push(cmd),
            other => panic!("after {out:?}: {other:?}"),
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_are_closed_though_keepalives_flow() {
    let (c, s) = pair().await;
    let server = tokio::spawn(async move {
        let cfg = SessionConfig { idle_timeout: Some(Duration::from_secs(60)), ..quick() };
        let (session, _) = server::accept(s, cfg, "smsc", |_| async { CommandStatus::EsmeRok }).await.unwrap();
        session.handle.closed().await
    });
    let bind = BindConfig::new(BindKind::Transceiver, "esme", "", "").unwrap();
    let cfg = SessionConfig { enquire_link_interval: Some(Duration::from_secs(10)), ..quick() };
    let client = client::bind(c, &bind, cfg).await.unwrap();
    assert_eq!(server.await.unwrap(), CloseReason::Idle(Duration::from_secs(60)));
    assert_eq!(client.handle.closed().await, CloseReason::PeerClosed);
}
