// Sends one message per destination through smsfleet with the `routesms`
// npm client (a third-party Route Mobile client) and prints what the client
// parsed, as JSON: [{"destination": "...", "status": 1, "message_id": "..."}].
// One destination per send: the client splits the whole reply on `|`, so
// for a comma list it would return "<id>,1701" as the id.
// Env: SMSFLEET_HOST, SMSFLEET_PORT, SMSFLEET_USER, SMSFLEET_PASSWORD;
// arguments: destinations.
'use strict';
const routesms = require('routesms');

routesms.connection = {
  host: process.env.SMSFLEET_HOST,
  port: process.env.SMSFLEET_PORT,
  username: process.env.SMSFLEET_USER,
  password: process.env.SMSFLEET_PASSWORD,
};
routesms.sender.source = 'ACME';

function sendOne(destination, message) {
  return new Promise((resolve) => {
    routesms.sender.destinaton = [destination];
    routesms.sender.message = message;
    routesms.send('sms', (response) => resolve({ destination, ...response }));
  });
}

(async () => {
  const out = [];
  for (const [i, d] of process.argv.slice(2).entries()) {
    out.push(await sendOne(d, `hello from routesms ${i}`));
  }
  console.log(JSON.stringify(out));
})();
