import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { asyncApiYaml } from '../../../src/contracts/asyncapi.ts';
import { EVENT_TYPES } from '../../../src/contracts/events.ts';

const COMMITTED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/asyncapi.yaml');

describe('AsyncAPI document', () => {
  it('docs/asyncapi.yaml is what the event contract generates (run `npm run asyncapi` after changing it)', async () => {
    assert.equal(await fs.readFile(COMMITTED, 'utf8'), await asyncApiYaml());
  });

  it('parses with the AsyncAPI parser without errors, with a channel per event type on the durable topic exchange', async () => {
    const { document, diagnostics } = await new Parser().parse(await fs.readFile(COMMITTED, 'utf8'));
    // The diagnostics' severity type comes from the parser's own copy of @stoplight/types.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-comparison
    const errors = diagnostics.filter((diagnostic) => diagnostic.severity === DiagnosticSeverity.Error);
    assert.deepEqual(
      errors.map((error) => `${error.path.join('.')}: ${error.message}`),
      [],
    );
    assert.ok(document, 'no document parsed');
    assert.equal(document.version(), '3.0.0');
    const channels = document.channels().all();
    assert.deepEqual(channels.map((channel) => channel.address()).sort(), [...EVENT_TYPES].sort());
    for (const channel of channels) {
      const amqp = channel.bindings().get('amqp')?.value() as {
        is: string;
        exchange: { name: string; type: string; durable: boolean };
      };
      assert.deepEqual(
        [amqp.is, amqp.exchange.name, amqp.exchange.type, amqp.exchange.durable],
        ['routingKey', 'events', 'topic', true],
      );
      const [message] = channel.messages().all();
      const payload = message.payload()!;
      assert.deepEqual(Object.keys(payload.properties() ?? {}).sort(), [
        'data',
        'event_id',
        'event_type',
        'timestamp',
        'user_id',
      ]);
      assert.equal(payload.properties()!.event_type.const(), channel.address());
    }
    for (const operation of document.operations().all()) {
      assert.equal((operation.bindings().get('amqp')?.value() as { deliveryMode: number }).deliveryMode, 2);
    }
  });
});
