import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openEventStream } from '../support/sse-client.ts';
import {
  events,
  getAs,
  publishAndRecord,
  reader,
  startEventLogHost,
  type EventLogHost,
  type Reader,
} from './event-log-host.ts';

// Who sees which events (decision 010): members their projects' events, users the user.*
// events about themselves, admins everything; what one may not see is a 404 or left out.

describe('event visibility by membership', () => {
  let service: EventLogHost;
  let admin: Reader;
  let alice: Reader; // owns project 101
  let bob: Reader; // owns project 102
  let carol: Reader; // added to project 101
  const published = {
    aliceRegistered: events.userRegistered(11),
    project101: events.projectCreated(101, 11),
    project102: events.projectCreated(102, 12),
    defect1001: events.defectCreated(1001, 101, 11),
    defect1002: events.defectCreated(1002, 102, 12),
    carolAdded: events.memberAdded(101, 13, 11),
  };

  before(async () => {
    service = await startEventLogHost();
    [admin, alice, bob, carol] = await Promise.all([reader(1, 'admin'), reader(11), reader(12), reader(13)]);
    await publishAndRecord(service.url, admin, [events.userRegistered(12), ...Object.values(published)]);
  });
  after(async () => {
    await service?.close();
  });

  const typesSeenBy = async (who: Reader, query = '') => {
    const response = await getAs(service.url, `/v1/events?limit=100${query}`, who);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body.items.map(
      (event: any) => `${event.event_type} ${JSON.stringify(event.data.project_id ?? event.data.user_id)}`,
    );
  };

  it("lists to each member their projects' events and the user events about them, to admins all", async () => {
    assert.deepEqual(await typesSeenBy(alice), [
      'project.member_added 101',
      'defect.created 101',
      'project.created 101',
      'user.registered 11',
    ]);
    assert.deepEqual(await typesSeenBy(bob), ['defect.created 102', 'project.created 102', 'user.registered 12']);
    assert.deepEqual(
      await typesSeenBy(carol),
      ['project.member_added 101', 'defect.created 101', 'project.created 101'],
      'a member added later sees the whole project, and no user events of others',
    );
    assert.equal((await typesSeenBy(bob, '&project_id=101')).length, 0, "a filter on another's project finds nothing");
    assert.equal((await typesSeenBy(admin)).length, 7);
  });

  it('answers 404 for an event one may not see, exactly as for one that does not exist', async () => {
    const foreign = await getAs(service.url, `/v1/events/${published.defect1001.event_id}`, bob);
    const missing = await getAs(service.url, '/v1/events/00000000-0000-4000-8000-000000000000', bob);
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.code, 'EVENT_NOT_FOUND');
    assert.match(foreign.body.detail, /not found/);
    assert.equal(missing.status, 404);
    assert.equal((await getAs(service.url, `/v1/events/${published.aliceRegistered.event_id}`, bob)).status, 404);
    assert.equal((await getAs(service.url, `/v1/events/${published.aliceRegistered.event_id}`, alice)).status, 200);
    assert.equal((await getAs(service.url, `/v1/events/${published.defect1001.event_id}`, carol)).status, 200);
    const asAdmin = await getAs(service.url, `/v1/events/${published.defect1001.event_id}`, admin);
    assert.equal(asAdmin.status, 200);
    assert.ok(Array.isArray(asAdmin.body.deliveries));
  });

  it("shows a defect's history to members only (an empty page otherwise, as for an unknown defect)", async () => {
    const ofMember = await getAs(service.url, '/v1/defects/1001/history', carol);
    assert.deepEqual(
      ofMember.body.items.map((event: any) => event.event_type),
      ['defect.created'],
    );
    const ofOther = await getAs(service.url, '/v1/defects/1001/history', bob);
    assert.equal(ofOther.status, 200);
    assert.deepEqual([ofOther.body.items, ofOther.body.total], [[], 0]);
    assert.equal((await getAs(service.url, '/v1/defects/1001/history', admin)).body.total, 1);
  });

  it("streams to each member their projects' events only: the sentinel in their own project comes first", async () => {
    const open = (who: Reader) =>
      openEventStream(`${service.url}/v1/events/stream`, { authorization: `Bearer ${who.token}` });
    const [ofAlice, ofBob, ofAdmin] = await Promise.all([open(alice), open(bob), open(admin)]);
    const foreignToBob = events.projectUpdated(101, 11, 'Только для участников 101');
    const bobSentinel = events.projectUpdated(102, 12, 'Сигнал Боба');
    const aliceSentinel = events.projectUpdated(101, 11, 'Сигнал Алисы');
    await publishAndRecord(service.url, admin, [foreignToBob, bobSentinel, aliceSentinel]);
    const [bobFirst] = await ofBob.waitFor(1, 10_000);
    assert.equal(
      bobFirst.data.event_id,
      bobSentinel.event_id,
      'nothing of project 101 reached bob before his own event',
    );
    assert.deepEqual(
      (await ofAlice.waitFor(2, 10_000)).map((message) => message.data.event_id),
      [foreignToBob.event_id, aliceSentinel.event_id],
    );
    assert.deepEqual(
      (await ofAdmin.waitFor(3, 10_000)).map((message) => message.data.event_id),
      [foreignToBob.event_id, bobSentinel.event_id, aliceSentinel.event_id],
    );
    for (const stream of [ofAlice, ofBob, ofAdmin]) stream.close();
  });

  it("takes a removed member's and a deleted project's events away, on the list, by id and on the stream", async () => {
    const carolStream = await openEventStream(`${service.url}/v1/events/stream`, {
      authorization: `Bearer ${carol.token}`,
    });
    const carolSentinel = events.projectCreated(103, 13);
    await publishAndRecord(service.url, admin, [
      events.memberRemoved(101, 13, 11),
      events.projectUpdated(101, 11, 'После ухода Кэрол'),
      events.projectDeleted(102, 12),
      carolSentinel,
    ]);
    const [carolFirst] = await carolStream.waitFor(1, 10_000);
    assert.equal(carolFirst.data.event_id, carolSentinel.event_id, 'nothing of project 101 after her removal');
    carolStream.close();
    assert.deepEqual(await typesSeenBy(carol), ['project.created 103']);
    assert.equal((await getAs(service.url, `/v1/events/${published.defect1001.event_id}`, carol)).status, 404);
    assert.deepEqual(await typesSeenBy(bob), ['user.registered 12'], 'a deleted project has no members left');
    assert.equal((await typesSeenBy(admin, '&project_id=102')).length, 4, 'admins still see it');
  });
});
