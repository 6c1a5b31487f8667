import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { asyncApiDocument } from '../../src/contracts/asyncapi.ts';
import { freePort } from '../support/free-port.ts';
import { startProcess, type ServiceProcess } from '../support/processes.ts';
import { startTestSystem, type TestSystem } from '../support/test-system.ts';

describe('the AsyncAPI document over HTTP', () => {
  let system: TestSystem;
  let gateway: ServiceProcess;

  before(async () => {
    system = await startTestSystem({ mode: 'embedded' });
    // The gateway only needs its upstreams' addresses to start; the all-in-one answers them all.
    const upstreams = {
      AUTH_URL: system.url,
      PROJECTS_URL: system.url,
      DEFECTS_URL: system.url,
      EVENTS_URL: system.url,
    };
    gateway = await startProcess('src/services/gateway/main.ts', { ...upstreams, LOG_LEVEL: 'warn' }, await freePort());
  });

  after(async () => {
    await gateway?.stop();
    await system?.close();
  });

  for (const where of ['all-in-one', 'gateway'] as const) {
    it(`${where} serves the contract's document at /asyncapi.yaml and /asyncapi.json`, async () => {
      const base = where === 'gateway' ? gateway.url : system.url;
      const expected = await asyncApiDocument();

      const yaml = await fetch(`${base}/asyncapi.yaml`);
      assert.equal(yaml.status, 200);
      assert.match(yaml.headers.get('content-type') ?? '', /^application\/yaml/);
      assert.deepEqual(parseYaml(await yaml.text()), expected);

      const json = await fetch(`${base}/asyncapi.json`);
      assert.equal(json.status, 200);
      assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await json.json(), expected);
    });
  }
});
