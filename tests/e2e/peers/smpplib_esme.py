#!/usr/bin/env python3
"""A customer's ESME built on smpplib (PyPI, not ours), driven by the
end-to-end tests against smsfleet's SMPP server. Every event is one JSON
line on stdout:

  binds    open --count binds of --kind one after the other, report each
           outcome, then unbind them all
  submit   bind, send --count submit_sm at --rate per second (0 = as fast as
           the window allows) with at most --window unanswered, report each
           submit_sm_resp; with --receipts N keep reading until N receipts
  receive  bind as a receiver and report receipts until --count or --idle
           seconds without one
"""
import argparse
import json
import select
import socket
import ssl
import sys
import time

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm


def out(**kw):
    print(json.dumps(kw), flush=True)


def client(a):
    ctx = None
    if a.tls_ca:
        # The chain is verified against the test's CA; smpplib gives no
        # server name to check, so the name is not.
        ctx = ssl.create_default_context(cafile=a.tls_ca)
        ctx.check_hostname = False
    c = smpplib.client.Client(a.host, a.port, timeout=a.timeout, allow_unknown_opt_params=True, ssl_context=ctx)
    c.connect()
    return c


def bind(c, a, kind):
    fn = {"tx": c.bind_transmitter, "rx": c.bind_receiver, "trx": c.bind_transceiver}[kind]
    fn(system_id=a.system_id, password=a.password)


def text_of(pdu):
    raw = pdu.short_message or b""
    payload = getattr(pdu, "message_payload", None)
    if payload:
        raw = payload
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)


def report_deliver(pdu):
    rid = getattr(pdu, "receipted_message_id", None)
    if isinstance(rid, bytes):
        rid = rid.decode()
    out(event="deliver", esm_class=int(pdu.esm_class or 0), receipted_message_id=rid,
        message_state=getattr(pdu, "message_state", None), text=text_of(pdu),
        source=(pdu.source_addr or b"").decode() if isinstance(pdu.source_addr, bytes) else pdu.source_addr)


def answer(c, pdu, status=smpplib.consts.SMPP_ESME_ROK):
    resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=c, status=status)
    resp.sequence = pdu.sequence
    c.send_pdu(resp)


def readable(c, wait):
    r, _, _ = select.select([c._socket], [], [], wait)
    return bool(r)


def handle(c, pdu, state):
    if pdu.command == "submit_sm_resp":
        mid = pdu.message_id.decode() if isinstance(pdu.message_id, bytes) else pdu.message_id
        state["outstanding"] -= 1
        out(event="resp", seq=pdu.sequence, status=int(pdu.status), id=mid or "")
    elif pdu.command == "deliver_sm":
        report_deliver(pdu)
        state["delivers"] += 1
        answer(c, pdu)
    elif pdu.command == "enquire_link":
        resp = smpplib.smpp.make_pdu("enquire_link_resp", client=c)
        resp.sequence = pdu.sequence
        c.send_pdu(resp)
    elif pdu.command == "generic_nack":
        state["outstanding"] -= 1
        out(event="nack", seq=pdu.sequence, status=int(pdu.status))


def cmd_binds(a):
    held = []
    for _ in range(a.count):
        c = client(a)
        try:
            bind(c, a, a.kind)
            out(event="bound")
            held.append(c)
        except smpplib.exceptions.PDUError as e:
            out(event="refused", status=e.args[1] if len(e.args) > 1 else -1)
            c.disconnect()
    if a.hold:
        time.sleep(a.hold)
    for c in held:
        c.unbind()
        c.disconnect()


def cmd_submit(a):
    c = client(a)
    bind(c, a, a.kind)
    out(event="bound")
    state = {"outstanding": 0, "delivers": 0}
    start = time.monotonic()
    text = a.text.encode("utf-16-be") if a.dcs == 8 else a.text.encode("latin-1")
    for i in range(a.count):
        if a.rate > 0:
            due = start + i / a.rate
            while time.monotonic() < due:
                if readable(c, max(0.0, due - time.monotonic())):
                    handle(c, c.read_pdu(), state)
        while state["outstanding"] >= a.window:
            handle(c, c.read_pdu(), state)
        kw = dict(source_addr_ton=5, source_addr=a.source, dest_addr_ton=1, destination_addr=a.to,
                  data_coding=a.dcs, registered_delivery=1 if a.registered else 0)
        if a.split:
            # smpplib's own splitting: UDH parts, one submit_sm each.
            parts, encoding, esm_class = smpplib.gsm.make_parts(a.text)
            for part in parts:
                while state["outstanding"] >= a.window:
                    handle(c, c.read_pdu(), state)
                c.send_message(short_message=part, esm_class=esm_class,
                               **dict(kw, data_coding=encoding))
                state["outstanding"] += 1
            continue
        if a.payload:
            kw["short_message"] = b""
            kw["message_payload"] = text
        else:
            kw["short_message"] = text
        if a.schedule:
            kw["schedule_delivery_time"] = a.schedule
        if a.validity:
            kw["validity_period"] = a.validity
        c.send_message(**kw)
        state["outstanding"] += 1
    while state["outstanding"] > 0:
        handle(c, c.read_pdu(), state)
    deadline = time.monotonic() + a.idle
    while state["delivers"] < a.receipts and time.monotonic() < deadline:
        if readable(c, 0.5):
            handle(c, c.read_pdu(), state)
            deadline = time.monotonic() + a.idle
    c.unbind()
    c.disconnect()


def cmd_receive(a):
    c = client(a)
    bind(c, a, a.kind)
    out(event="bound")
    state = {"outstanding": 0, "delivers": 0}
    deadline = time.monotonic() + a.idle
    while state["delivers"] < a.count and time.monotonic() < deadline:
        if readable(c, 0.5):
            handle(c, c.read_pdu(), state)
            deadline = time.monotonic() + a.idle
    c.unbind()
    c.disconnect()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["binds", "submit", "receive"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--system-id", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--kind", default="trx", choices=["tx", "rx", "trx"])
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--hold", type=float, default=0)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--to", default="628111000001")
    p.add_argument("--source", default="ACME")
    p.add_argument("--text", default="hello from smpplib")
    p.add_argument("--dcs", type=int, default=0)
    p.add_argument("--payload", action="store_true")
    p.add_argument("--split", action="store_true")
    p.add_argument("--registered", action="store_true")
    p.add_argument("--schedule", default="")
    p.add_argument("--validity", default="")
    p.add_argument("--receipts", type=int, default=0)
    p.add_argument("--idle", type=float, default=20)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--tls-ca", default="")
    a = p.parse_args()
    try:
        {"binds": cmd_binds, "submit": cmd_submit, "receive": cmd_receive}[a.command](a)
    except smpplib.exceptions.PDUError as e:
        out(event="refused", status=e.args[1] if len(e.args) > 1 else -1, why=str(e.args[0]))
    except (smpplib.exceptions.ConnectionError, socket.error) as e:
        out(event="closed", why=str(e))


if __name__ == "__main__":
    sys.exit(main())
