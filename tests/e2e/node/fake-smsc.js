// A fake SMSC on node-smpp (a real third-party SMPP implementation) for the
// dispatcher's SMPP tests. Behaviour comes from the FAKE_SMSC environment
// variable (JSON); every event is one JSON line on stdout.
//   latency_ms        delay before each submit_sm_resp (default 5)
//   receipts          "after" (default), "before" (receipt acked before the resp), "none"
//   receipt_tlvs      send receipted_message_id + message_state TLVs (default true)
//   id_format         "dec" (default), "hex", "hex0" (upper-case hex, leading zeros)
//   receipt_id_format "same" (default), "dec", "hex"
//   throttle_every    every Nth submit_sm is answered ESME_RTHROTTLED (0 = never)
//   reject_to         destination answered ESME_RINVDSTADR
//   garbage_after     after this many submits, write one undecodable PDU (once)
//   ignore_enquire    never answer enquire_link (a dead link)
//   drop_after        destroy the first connection after this many submits
//   tls_key, tls_cert PEM files: serve SMPP over TLS
'use strict';
const fs = require('fs');
const smpp = require('smpp');

const cfg = Object.assign(
  { latency_ms: 5, receipts: 'after', receipt_tlvs: true, id_format: 'dec', receipt_id_format: 'same', throttle_every: 0 },
  JSON.parse(process.env.FAKE_SMSC || '{}'),
);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let nextId = 1000;
let submits = 0;
let garbageSent = false;
let dropped = false;

function fmtId(n, fmt) {
  if (fmt === 'hex') return n.toString(16);
  if (fmt === 'hex0') return n.toString(16).toUpperCase().padStart(10, '0');
  return String(n);
}

function ymd(d) {
  const p = (x) => String(x).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

const tlsOptions = cfg.tls_key ? { key: fs.readFileSync(cfg.tls_key), cert: fs.readFileSync(cfg.tls_cert) } : {};
const server = smpp.createServer(tlsOptions, function (session) {
  let inflight = 0;
  let maxInflight = 0;
  const bind = (pdu) => {
    out({ bound: pdu.system_id, command: pdu.command });
    session.send(pdu.response());
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('bind_receiver', bind);
  session.on('enquire_link', (pdu) => {
    out({ enquire_link: true });
    if (!cfg.ignore_enquire) session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    out({ unbind: true });
    session.send(pdu.response());
    session.close();
  });
  session.on('generic_nack', (pdu) => out({ generic_nack: pdu.command_status }));
  session.on('close', () => out({ closed: true, max_inflight: maxInflight }));
  session.on('error', (e) => out({ error: String(e) }));
  session.on('submit_sm', (pdu) => {
    submits += 1;
    inflight += 1;
    maxInflight = Math.max(maxInflight, inflight);
    const n = submits;
    // node-smpp decodes the text itself (GSM 03.38, UCS-2, Latin-1): an
    // independent check of our encoding.
    const msg = pdu.short_message || {};
    const payload = pdu.message_payload || null;
    const throttled = cfg.throttle_every > 0 && n % cfg.throttle_every === 0;
    const rejected = cfg.reject_to && pdu.destination_addr === cfg.reject_to;
    const id = nextId++;
    const msgId = fmtId(id, cfg.id_format);
    const event = {
      submit: n, at_ms: Date.now(), seq: pdu.sequence_number, to: pdu.destination_addr, from: pdu.source_addr,
      dcs: pdu.data_coding, esm: pdu.esm_class, inflight,
      text: typeof msg.message === 'string' ? msg.message : (msg.message ? msg.message.toString('hex') : ''),
      udh: (msg.udh || []).map((u) => Buffer.from(u).toString('hex')),
      sar: pdu.sar_msg_ref_num !== undefined ? [pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum] : null,
      payload: payload ? (typeof payload.message === 'string' ? payload.message : String(payload)) : null,
      status: throttled ? 'throttled' : rejected ? 'rejected' : 'ok', id: throttled || rejected ? null : msgId,
    };
    const respond = () => {
      inflight -= 1;
      if (throttled) session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      else if (rejected) session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      else session.send(pdu.response({ message_id: msgId }));
      out(event);
      if (cfg.garbage_after && n >= cfg.garbage_after && !garbageSent) {
        garbageSent = true;
        // command_length 16, an unknown command_id: must get generic_nack.
        session.socket.write(Buffer.from([0, 0, 0, 16, 0, 0, 0x77, 0x77, 0, 0, 0, 0, 0, 0, 0x12, 0x34]));
        out({ garbage: true });
      }
      if (cfg.drop_after && n >= cfg.drop_after && !dropped) {
        dropped = true;
        out({ dropping: true });
        session.socket.destroy();
      }
    };
    const receipt = (done) => {
      if (throttled || rejected || cfg.receipts === 'none') return done();
      const rfmt = cfg.receipt_id_format === 'same' ? cfg.id_format : cfg.receipt_id_format;
      const rid = fmtId(id, rfmt);
      const now = ymd(new Date());
      const text = `id:${rid} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:DELIVRD err:000 text:x`;
      const opts = { source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 4, short_message: Buffer.from(text) };
      if (cfg.receipt_tlvs) {
        opts.receipted_message_id = rid;
        opts.message_state = 2;
      }
      session.deliver_sm(opts, (resp) => {
        out({ receipt_resp: resp.command_status, id: rid });
        done();
      });
    };
    setTimeout(() => {
      if (cfg.receipts === 'before') receipt(respond);
      else { respond(); receipt(() => {}); }
    }, cfg.latency_ms);
  });
});
server.listen(0, '127.0.0.1', function () {
  out({ listening: server.address().port });
});
