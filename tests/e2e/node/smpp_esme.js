'use strict';
// node-smpp (npm `smpp`, not ours) as a customer ESME against smsfleet's
// SMPP server: binds as a transceiver, submits SMSFLEET_COUNT messages
// with registered_delivery, answers the receipts, and prints one JSON line
// per submit_sm_resp and per receipt.
const smpp = require('smpp');

const port = process.env.SMSFLEET_SMPP_PORT;
const count = Number(process.env.SMSFLEET_COUNT || '3');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const session = smpp.connect({ url: `smpp://127.0.0.1:${port}`, auto_enquire_link_period: 10000 });
let receipts = 0;
const done = () => session.unbind(() => { session.close(); process.exit(0); });
setTimeout(() => { out({ event: 'timeout' }); process.exit(0); }, 30000);
session.on('error', (e) => { out({ event: 'error', why: String(e) }); process.exit(1); });
session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  const sm = pdu.short_message;
  const text = Buffer.isBuffer(sm) ? sm.toString('latin1') : (sm && sm.message !== undefined ? String(sm.message) : String(sm));
  out({ event: 'deliver', esm_class: pdu.esm_class, receipted_message_id: pdu.receipted_message_id, text });
  receipts += 1;
  if (receipts >= count) done();
});
session.bind_transceiver({ system_id: process.env.SMSFLEET_USER, password: process.env.SMSFLEET_PASSWORD }, (pdu) => {
  if (pdu.command_status !== 0) {
    out({ event: 'refused', status: pdu.command_status });
    process.exit(0);
  }
  out({ event: 'bound' });
  for (let i = 0; i < count; i += 1) {
    session.submit_sm({
      source_addr: 'ACME',
      destination_addr: `62811120000${i}`,
      registered_delivery: 1,
      short_message: Buffer.from(`hello from node-smpp ${i}`),
    }, (resp) => out({ event: 'resp', status: resp.command_status, id: resp.message_id }));
  }
});
