'use strict';
// Proof consumer: Node.js drives libzerobus.so.1 through an N-API addon (addon.c).
//
// Starts zerobus-local (with OAuth: test-client/test-secret), opens a JSON stream on
// main.default.abi_node (a Promise: creation runs on the libuv thread pool), ingests
// 1,000 records (synchronous: ingest only copies and queues; BigInt offsets), gets
// the acks as BigInt ranges on the JS thread (the stream's wakeup fd is watched by
// a uv_poll_t on Node's own event loop), awaits flush and close, and reads the row
// count back from SQLite (exactly 1,000, ids 0..999 in order).
//
// usage: node consumer.js ADDON.node SERVER_BINARY
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const [addonPath, serverBin] = process.argv.slice(2);
const zb = require(path.resolve(addonPath));
const TABLE = 'main.default.abi_node';
const N = 1000;

function startServer(db) {
  const child = spawn(serverBin, ['--port', '0', '--http-port', '0', '--db', db],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      const m = /^zerobus-local grpc=(\S+) http=(\S+)/.exec(line);
      if (!m) reject(new Error(`zerobus-local did not start: ${line}`));
      else resolve({ child, endpoint: `http://${m[1]}`, workspace: `http://${m[2]}` });
    });
    child.once('exit', (code) => reject(new Error(`zerobus-local exited with ${code}`)));
  });
}

async function run(endpoint, workspace) {
  const sdk = zb.sdkNew(endpoint, workspace);
  try {
    // Typed errors: a Promise rejected with .code/.status/.retryable.
    await assert.rejects(
      zb.streamCreate(sdk, TABLE, 'test-client', 'wrong', { record_type: 'json' }, () => {}),
      (e) => e.code === 'ZEROBUS_ERR_UNAUTHENTICATED' && e.retryable === false);
    assert.throws(() => zb.streamCreate(sdk, TABLE, 'test-client', 'test-secret',
      { record_typ: 'json' }, () => {}), (e) => e.code === 'ZEROBUS_ERR_UNKNOWN_OPTION');

    const acked = [];
    let ranges = 0;
    let allAcked;
    const done = new Promise((resolve) => { allAcked = resolve; });
    const stream = await zb.streamCreate(sdk, TABLE, 'test-client', 'test-secret',
      { record_type: 'json' }, (first, last) => {
        ranges++;
        for (let o = first; o <= last; o++) acked.push(o);
        if (acked.length >= N) allAcked();
      });
    try {
      for (let i = 0; i < N; i++) {
        const off = zb.ingest(stream, Buffer.from(JSON.stringify({ id: i, lang: 'node' })));
        assert.equal(off, BigInt(i));
      }
      assert.throws(() => zb.ingest(stream, '"just a string"'),
        (e) => e.code === 'ZEROBUS_ERR_INVALID_RECORD');
      await zb.flush(stream);
      const timer = setTimeout(() => allAcked(), 30000);
      await done;
      clearTimeout(timer);
      assert.equal(acked.length, N, `acks received: ${acked.length}`);
      acked.forEach((o, i) => assert.equal(o, BigInt(i), `ack #${i} is offset ${o}`));
      const st = zb.stats(stream);
      assert.deepEqual([st.recordsAcked, st.ackedOffset, st.inflightRecords],
        [BigInt(N), BigInt(N - 1), 0n]);
      await zb.close(stream);
      assert.equal(acked.length, N, 'no ack after close');
    } finally {
      zb.destroy(stream);
    }
    assert.throws(() => zb.ingest(stream, '{}'), /not a live stream/);
    console.log(`node: ${N} acks in order as ${ranges} BigInt range(s) on the JS thread ` +
      '(wakeup fd on the libuv loop)');
  } finally {
    zb.sdkDestroy(sdk);
  }
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zerobus-abi-node-'));
  const db = path.join(tmp, 'node.db');
  const { child, endpoint, workspace } = await startServer(db);
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve([code, sig])));
  try {
    await run(endpoint, workspace);
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await exited;
  assert.equal(code, 0, 'zerobus-local exit status');
  const out = execFileSync('sqlite3', [db,
    `SELECT count(*), group_concat(id) FROM (SELECT id FROM "${TABLE}" ORDER BY rowid)`],
  { encoding: 'utf8' }).trim();
  fs.rmSync(tmp, { recursive: true, force: true });
  const [count, ids] = out.split('|');
  assert.equal(count, String(N), `stored rows ${count}`);
  assert.equal(ids, Array.from({ length: N }, (_, i) => i).join(','), 'ids 0..999 in order');
  console.log(`node: stored rows ${count}, ids 0..${N - 1} in order`);
}

main().catch((e) => {
  console.log(`node: FAILED: ${e.stack || e}`);
  process.exit(1);
});
