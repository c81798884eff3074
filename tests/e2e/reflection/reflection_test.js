// An independent gRPC client (Node.js, @grpc/grpc-js) that knows no .proto file: it starts the
// real tshared, learns the API through server reflection (grpc.reflection.v1alpha, what
// grpcurl uses), lists the services, calls tshare.v1.Shares/Set and Get with the JSON of the
// README, checks grpc.health.v1.Health, then stops tshared with SIGTERM (exit 0 expected).
//
// Usage: node reflection_test.js PATH/TO/tshared
// Exit status: 0 passed, 1 failed, 77 skipped (the npm packages are not installed: run
// scripts/install-test-tools.sh).
'use strict';

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const readline = require('node:readline');

let grpc;
let GrpcReflection;
try {
  grpc = require('@grpc/grpc-js');
  ({ GrpcReflection } = require('grpc-js-reflection-client'));
} catch (e) {
  console.log(`SKIP: ${e.message.split('\n')[0]}; run scripts/install-test-tools.sh`);
  process.exit(77);
}

const tshared = process.argv[2];
if (!tshared) {
  console.error('usage: node reflection_test.js PATH/TO/tshared');
  process.exit(1);
}

// Starts tshared on a free port; resolves with {child, address} once it printed its address.
function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(tshared, ['--listen=127.0.0.1:0', '--metrics_listen='], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`tshared exited early with ${code}`)));
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      const m = /^tshared listening on (\S+) \(store_id ([0-9a-f]+)\)$/.exec(line);
      if (!m) {
        reject(new Error(`unexpected first line: ${line}`));
        return;
      }
      child.removeAllListeners('exit');
      resolve({ child, address: m[1], storeId: m[2] });
    });
  });
}

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10000 }, (err, response) =>
      err ? reject(err) : resolve(response));
  });
}

async function main() {
  const { child, address, storeId } = await startServer();
  const exited = new Promise((resolve) => child.on('exit', (code, signal) =>
    resolve({ code, signal })));
  try {
    const credentials = grpc.credentials.createInsecure();
    const reflection = new GrpcReflection(address, credentials);

    const services = await reflection.listServices();
    for (const name of ['tshare.v1.Shares', 'tshare.v1.Bus', 'tshare.v1.Workers',
                        'tshare.v1.Admin', 'grpc.health.v1.Health']) {
      assert.ok(services.includes(name), `reflection lists ${name} (got ${services})`);
    }
    console.log(`services: ${services.join(', ')}`);

    const options = { keepCase: true, longs: String, enums: String, oneofs: true };
    const shares = (await reflection.getDescriptorBySymbol('tshare.v1.Shares'))
      .getPackageObject(options).tshare.v1.Shares;
    const client = new shares(address, credentials);

    // The JSON of design.md and the README's grpcurl example, as text, parsed as it comes.
    const set = await call(client, 'Set',
                           JSON.parse('{"key":"visits","value":{"int_value":"1"}}'));
    assert.equal(set.version, '1');
    assert.equal(set.created, true);
    assert.equal(set.store_id, storeId);
    const get = await call(client, 'Get', { key: 'visits' });
    assert.equal(get.value.int_value, '1');
    assert.equal(get.version, '1');
    assert.equal(get.revision, set.revision);
    console.log(`Set then Get: ${JSON.stringify(get)}`);

    const health = (await reflection.getDescriptorBySymbol('grpc.health.v1.Health'))
      .getPackageObject(options).grpc.health.v1.Health;
    const check = await call(new health(address, credentials), 'Check',
                             { service: 'tshare.v1.Shares' });
    assert.equal(check.status, 'SERVING');
    client.close();
  } finally {
    child.kill('SIGTERM');
  }
  const { code, signal } = await exited;
  assert.equal(signal, null, `tshared died of ${signal}`);
  assert.equal(code, 0, 'tshared exits 0 on SIGTERM');
  console.log('PASS');
}

main().catch((e) => {
  console.error(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
