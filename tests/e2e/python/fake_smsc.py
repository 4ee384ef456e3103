"""A fake SMSC on PyPI smpp34 for the dispatcher's SMPP tests, scripted by
the FAKE_SMSC environment variable (JSON):
  port             where to listen (required)
  receipts_before  send each receipt (and have it acknowledged) before the
                   submit_sm_resp (default true)
  throttle_every   every Nth submit_sm is answered ESME_RTHROTTLED (0 = never)
  unbind_after     after this many accepted submits, unbind the session once
                   (the SMSC ends the bind; the ESME must bind again)
Every event is one JSON line on stdout.
"""
import asyncio
import json
import os
import sys

import smpp34


def out(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def main():
    cfg = {"receipts_before": True, "throttle_every": 0, "unbind_after": 0}
    cfg.update(json.loads(os.environ.get("FAKE_SMSC", "{}")))
    server = smpp34.Server("127.0.0.1", int(cfg["port"]), system_id="pysmsc")
    await server.start()
    out(listening=int(cfg["port"]))
    sessions = {}
    submits = accepted = 0
    unbound_once = False
    next_id = 5000
    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            sessions[event.session_id] = event
            out(bound=event.system_id)
            continue
        if isinstance(event, smpp34.Unbound):
            sessions.pop(event.session_id, None)
            out(unbound=True)
            continue
        submits += 1
        to = event.destination_addr
        if cfg["throttle_every"] and submits % cfg["throttle_every"] == 0:
            event.reject(smpp34.ESME_RTHROTTLED)
            out(submit=submits, to=to, status="throttled")
            continue
        next_id += 1
        message_id = str(next_id)
        esme = sessions.get(event.session_id)
        receipt = (
            f"id:{message_id} sub:001 dlvrd:001 submit date:2612021200 done date:2612021200 "
            f"stat:DELIVRD err:000 text:"
        ).encode()
        tlvs = [
            smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\0"),
            smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([2])),
        ]

        async def send_receipt():
            if esme is None or not esme.can_receive:
                return
            try:
                resp = await esme.deliver_sm(
                    event.source_addr, receipt, source_addr=to, esm_class=4, tlvs=tlvs
                )
                out(receipt_resp=resp.command_status, id=message_id)
            except smpp34.SmppError as e:
                # The session ended meanwhile: an SMSC would keep the receipt;
                # this one only reports it.
                out(receipt_lost=message_id, error=str(e))

        try:
            if cfg["receipts_before"]:
                await send_receipt()
                event.accept(message_id)
            else:
                event.accept(message_id)
                await send_receipt()
        except smpp34.SmppError as e:
            out(submit=submits, to=to, status="lost", error=str(e))
            continue
        accepted += 1
        out(submit=submits, to=to, status="ok", id=message_id)
        if cfg["unbind_after"] and accepted >= cfg["unbind_after"] and not unbound_once and esme:
            unbound_once = True
            out(unbinding=True)
            await esme.unbind()


asyncio.run(main())
