// examples/node/bank.js: an app on Meridian through the `pg` package, the
// way any Node.js PostgreSQL program talks to it.
//
//   - parameterized queries ($1, $2: the extended query protocol), named
//     prepared statements ({ name, text, values }: parsed once per connection);
//   - a multi-key transaction (a bank transfer: two balances and a history
//     row) with the retry loop every app needs against a serializable
//     database: SQLSTATE 40001 means "run the whole transaction again", after
//     a short randomized backoff, a bounded number of times;
//   - the same through CockroachDB's SAVEPOINT cockroach_restart protocol.
//
// Several workers transfer money concurrently over a few accounts (a pool of
// connections), so conflicts and retries happen; one transfer also collides
// on purpose with a rival connection, so the retry path runs every time.
//
// Usage: node bank.js [connection-url]   (default: $DATABASE_URL, else the local node)
// Prints "bank: ok ..." and exits 0 when the money adds up.
'use strict';

const { Pool } = require('pg');

const ACCOUNTS = 6;
const INITIAL_BALANCE = 1000;
const WORKERS = 4;
const TRANSFERS_PER_WORKER = 10;
const RETRIES_MAX = 25; // attempts of one transaction before giving up
const BACKOFF_MIN_MS = 1; // first pause after a 40001 ...
const BACKOFF_MAX_MS = 200; // ... doubling up to this

const url =
  process.argv[2] ||
  process.env.DATABASE_URL ||
  'postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable';

let retries = 0;
let nextTransferId = 1;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Randomized exponential backoff: attempt 1 waits up to 1 ms, then 2, 4...
function backoffMs(attempt) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (attempt - 1));
  return cap / 2 + Math.random() * (cap / 2);
}

class Insufficient extends Error {}

// Run fn(client) in a transaction; on 40001 roll back, back off and run it
// again from the start (fn must be safe to re-run: it only talks to the
// database). Any other error rolls back and is thrown.
async function withRetry(client, fn) {
  for (let attempt = 1; ; attempt++) {
    await client.query('BEGIN');
    try {
      const result = await fn(client, attempt);
      await client.query('COMMIT'); // a 40001 may come from the COMMIT itself
      return result;
    } catch (err) {
      // after a failed COMMIT the transaction is already over: ROLLBACK only warns
      await client.query('ROLLBACK').catch(() => {});
      if (err.code !== '40001' || attempt >= RETRIES_MAX) throw err;
      retries++;
      await sleep(backoffMs(attempt));
    }
  }
}

// CockroachDB's client-side protocol: one BEGIN, SAVEPOINT cockroach_restart;
// on 40001 ROLLBACK TO SAVEPOINT cockroach_restart and run fn again; RELEASE
// SAVEPOINT cockroach_restart commits, COMMIT ends the block.
async function withSavepointRetry(client, fn) {
  await client.query('BEGIN');
  await client.query('SAVEPOINT cockroach_restart');
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await fn(client, attempt);
        await client.query('RELEASE SAVEPOINT cockroach_restart');
        await client.query('COMMIT');
        return result;
      } catch (err) {
        if (err.code !== '40001' || attempt >= RETRIES_MAX) throw err;
        retries++;
        await sleep(backoffMs(attempt));
        await client.query('ROLLBACK TO SAVEPOINT cockroach_restart');
      }
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

// The statements of one transfer. `between` runs once between the read and
// the writes (the deliberate collision).
async function transferBody(client, from, to, amount, via, between) {
  const id = nextTransferId++;
  const { rows } = await client.query({
    name: 'balance',
    text: 'SELECT balance FROM node_accounts WHERE id = $1',
    values: [from],
  });
  if (rows.length !== 1) throw new Error(`no account ${from}`);
  if (Number(rows[0].balance) < amount) throw new Insufficient();
  if (between) await between();
  await client.query({
    name: 'debit',
    text: 'UPDATE node_accounts SET balance = balance - $2 WHERE id = $1',
    values: [from, amount],
  });
  await client.query({
    name: 'credit',
    text: 'UPDATE node_accounts SET balance = balance + $2 WHERE id = $1',
    values: [to, amount],
  });
  await client.query(
    'INSERT INTO node_transfers (id, from_id, to_id, amount, via) VALUES ($1, $2, $3, $4, $5)',
    [id, from, to, amount, via],
  );
}

// A transfer as one retried transaction; false when the money was not there.
async function transfer(client, from, to, amount, { savepoint = false, between = null } = {}) {
  const run = savepoint ? withSavepointRetry : withRetry;
  try {
    await run(client, (c, attempt) =>
      transferBody(c, from, to, amount, savepoint ? 'savepoint' : 'begin-commit',
        attempt === 1 ? between : null));
    return true;
  } catch (err) {
    if (err instanceof Insufficient) return false;
    throw err;
  }
}

async function setup(pool) {
  await pool.query('DROP TABLE IF EXISTS node_accounts, node_transfers');
  await pool.query(
    'CREATE TABLE node_accounts (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL)');
  await pool.query(
    'CREATE TABLE node_transfers (id BIGINT PRIMARY KEY, from_id BIGINT, to_id BIGINT, amount BIGINT, via TEXT)');
  for (let id = 1; id <= ACCOUNTS; id++) {
    await pool.query('INSERT INTO node_accounts (id, owner, balance) VALUES ($1, $2, $3)',
      [id, `owner-${id}`, INITIAL_BALANCE]);
  }
}

async function main() {
  const pool = new Pool({ connectionString: url, max: WORKERS + 1 });
  let committed = 0;
  try {
    await setup(pool);

    // parameterized reads of several types
    const r = await pool.query(
      'SELECT count(*) AS n, sum(balance) AS total FROM node_accounts WHERE owner LIKE $1 AND balance >= $2',
      ['owner-%', 0]);
    if (Number(r.rows[0].n) !== ACCOUNTS) throw new Error(`count ${r.rows[0].n}`);

    // the deliberate collision: a rival commits a change to account 1
    // between this transfer's read and its writes => 40001, retried
    {
      const a = await pool.connect();
      const b = await pool.connect();
      try {
        const rival = async () => {
          if (await transfer(b, 1, 2, 1)) committed++;
        };
        if (await transfer(a, 1, 3, 5, { between: rival })) committed++;
        if (await transfer(a, 1, 4, 5, { savepoint: true, between: rival })) committed++;
      } finally {
        a.release();
        b.release();
      }
    }

    // concurrent workers over few accounts: real conflicts
    const worker = async (w) => {
      const client = await pool.connect();
      try {
        for (let i = 0; i < TRANSFERS_PER_WORKER; i++) {
          const from = 1 + Math.floor(Math.random() * ACCOUNTS);
          const to = 1 + (from % ACCOUNTS);
          const amount = 1 + Math.floor(Math.random() * 100);
          if (await transfer(client, from, to, amount, { savepoint: (w + i) % 2 === 1 })) committed++;
        }
      } finally {
        client.release();
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    const sum = await pool.query('SELECT sum(balance) AS total, min(balance) AS low FROM node_accounts');
    const rows = await pool.query('SELECT count(*) AS n FROM node_transfers');
    const total = Number(sum.rows[0].total);
    if (total !== ACCOUNTS * INITIAL_BALANCE || Number(sum.rows[0].low) < 0 ||
        Number(rows.rows[0].n) !== committed) {
      throw new Error(`money does not add up: total ${total}, low ${sum.rows[0].low}, ` +
        `transfer rows ${rows.rows[0].n}, committed ${committed}`);
    }
    console.log(`bank: ok: ${committed} transfers committed, ${retries} retries after 40001, total ${total}`);
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  console.error(`bank: FAILED: ${err.code ? `SQLSTATE ${err.code}: ` : ''}${err.message}`);
  process.exit(1);
});
