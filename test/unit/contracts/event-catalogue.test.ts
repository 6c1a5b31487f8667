import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { contractViolation, EVENTS, EVENT_TYPES } from '../../../src/contracts/events.ts';

const EVENTS_DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/events.md');

interface DocumentedEvent {
  publishedBy: string;
  when: string;
  fields: string[];
  seed: boolean;
}

/** The two event tables of docs/events.md (the seed's, then the additions), row by row. */
async function documentedEvents(): Promise<Map<string, DocumentedEvent>> {
  const doc = await fs.readFile(EVENTS_DOC, 'utf8');
  const section = doc.slice(doc.indexOf('### Event types'), doc.indexOf('### RabbitMQ topology'));
  const additionsStart = section.indexOf('**Additions, not in the seed:**');
  const documented = new Map<string, DocumentedEvent>();
  const rowPattern = /^\| `([a-z_]+\.[a-z_]+)` \| (\w+) \| (.+) \| (.+) \|$/gm;
  for (const match of section.matchAll(rowPattern)) {
    const [, eventType, publishedBy, when, fields] = match;
    documented.set(eventType, {
      publishedBy: publishedBy,
      when: when,
      fields: [...fields.matchAll(/`([a-z_]+)`/g)].map(([, field]) => field),
      seed: match.index < additionsStart,
    });
  }
  return documented;
}

describe('event contract', () => {
  it('the event tables of docs/events.md list every type of the contract with its producer, occasion and fields', async () => {
    const documented = await documentedEvents();
    const fromContract = new Map(
      EVENT_TYPES.map((eventType) => {
        const { publishedBy, when, seed, data } = EVENTS[eventType];
        return [eventType, { publishedBy, when, fields: Object.keys(data.properties), seed }];
      }),
    );
    assert.deepEqual(Object.fromEntries(documented), Object.fromEntries(fromContract));
  });

  it("the seed's seven types have exactly the seed's fields", () => {
    const seedTypes = EVENT_TYPES.filter((eventType) => EVENTS[eventType].seed);
    assert.deepEqual(
      Object.fromEntries(seedTypes.map((eventType) => [eventType, Object.keys(EVENTS[eventType].data.properties)])),
      {
        'project.created': ['project_id', 'name', 'owner_id'],
        'project.updated': ['project_id', 'name', 'updated_by'],
        'project.deleted': ['project_id', 'deleted_by'],
        'defect.created': ['defect_id', 'title', 'status', 'priority', 'project_id', 'reporter_id'],
        'defect.updated': ['defect_id', 'title', 'updated_by'],
        'defect.status_changed': ['defect_id', 'old_status', 'new_status', 'changed_by'],
        'defect.deleted': ['defect_id', 'deleted_by'],
      },
    );
  });

  it('publishing is strict and names the field; consuming accepts added fields; other types are not checked', () => {
    const valid = { defect_id: 1, old_status: 'Новая', new_status: 'В работе', changed_by: 7 };
    assert.equal(contractViolation('defect.status_changed', valid, 'publish'), undefined);
    assert.match(
      contractViolation('defect.status_changed', { ...valid, changed_by: '7' }, 'publish')!,
      /data\.changed_by/,
    );
    assert.match(
      contractViolation('defect.status_changed', { ...valid, new_status: 'Done' }, 'consume')!,
      /data\.new_status/,
    );
    const { changed_by: _, ...missing } = valid;
    assert.match(contractViolation('defect.status_changed', missing, 'consume')!, /data\.changed_by/);
    assert.match(
      contractViolation('defect.status_changed', { ...valid, chnaged_by: 7 }, 'publish')!,
      /data\.chnaged_by/,
    );
    assert.equal(
      contractViolation('defect.status_changed', { ...valid, comment: 'added later' }, 'consume'),
      undefined,
    );
    assert.equal(contractViolation('partner.something', { anything: true }, 'consume'), undefined);
  });
});
