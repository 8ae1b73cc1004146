#!/usr/bin/env node
// A local stand-in for the Twilio REST API (2010-04-01 Messages.json and
// Calls.json), for the offline lab and the tests only: nothing real runs
// offline. The product talks to it through the official `twilio` SDK with its
// base URL pointed here. It answers with Twilio's response shapes and records
// every request it got (GET /__recorded; JSON lines in --record FILE).
// Test controls: POST /__outage {"down": true} makes every API call answer 503.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, record: { type: 'string' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: twilio-standin.mjs --port N [--host H] [--record FILE]');
  process.exit(2);
}

const recorded = [];
let down = false;
const sid = (prefix) => prefix + randomBytes(16).toString('hex');

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function twilioError(res, status, code, message) {
  send(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString();
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    if (url.pathname === '/__recorded' && req.method === 'GET') return send(res, 200, recorded);
    if (url.pathname === '/__outage' && req.method === 'POST') {
      down = JSON.parse(raw || '{}').down === true;
      return send(res, 200, { down });
    }
    const match = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages|Calls)\.json$/.exec(url.pathname);
    if (!match || req.method !== 'POST') return twilioError(res, 404, 20404, `The requested resource ${url.pathname} was not found`);
    const [, account, kind] = match;
    const auth = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
    const [user, password] = auth.split(':');
    if (user !== account || !password) return twilioError(res, 401, 20003, 'Authenticate');
    const form = Object.fromEntries(new URLSearchParams(raw));
    const entry = { at: new Date().toISOString(), kind, account, form, outage: down };
    recorded.push(entry);
    if (values.record) appendFileSync(values.record, JSON.stringify(entry) + '\n');
    if (down) return twilioError(res, 503, 20503, 'Service Unavailable');
    if (!form.To || !form.From) return twilioError(res, 400, 21604, "A 'To' and a 'From' phone number are required.");
    const now = new Date().toUTCString();
    if (kind === 'Messages') {
      if (!form.Body) return twilioError(res, 400, 21602, 'Message body is required.');
      const id = sid('SM');
      return send(res, 201, {
        account_sid: account, api_version: '2010-04-01', body: form.Body, date_created: now, date_sent: null, date_updated: now,
        direction: 'outbound-api', error_code: null, error_message: null, from: form.From, messaging_service_sid: null,
        num_media: '0', num_segments: '1', price: null, price_unit: 'USD', sid: id, status: 'queued',
        subresource_uris: { media: `/2010-04-01/Accounts/${account}/Messages/${id}/Media.json` }, to: form.To,
        uri: `/2010-04-01/Accounts/${account}/Messages/${id}.json`,
      });
    }
    if (!form.Twiml && !form.Url) return twilioError(res, 400, 21205, 'Url or Twiml parameter is required.');
    const id = sid('CA');
    return send(res, 201, {
      account_sid: account, annotation: null, answered_by: null, api_version: '2010-04-01', caller_name: null,
      date_created: now, date_updated: now, direction: 'outbound-api', duration: null, end_time: null, forwarded_from: null,
      from: form.From, from_formatted: form.From, group_sid: null, parent_call_sid: null, phone_number_sid: null, price: null,
      price_unit: 'USD', sid: id, start_time: null, status: 'queued', subresource_uris: {}, to: form.To, to_formatted: form.To,
      trunk_sid: null, uri: `/2010-04-01/Accounts/${account}/Calls/${id}.json`, queue_time: '0',
    });
  });
});

server.listen(port, values.host, () => console.log(`twilio stand-in listening on http://${values.host}:${port}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
