import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { connectDatabase } from '../../src/platform/db/connect.ts';
import type { Database } from '../../src/platform/db/database.ts';
import { migrate } from '../../src/platform/db/migrate.ts';
import type { EventEnvelope } from '../../src/platform/events/envelope.ts';
import { eventStore } from '../../src/services/event-log/event-store.ts';
import { eventLogMigrations } from '../../src/services/event-log/migrations.ts';
import { TEST_POSTGRES_URL } from '../support/environment.ts';
import { dropDatabase, MODES } from '../support/test-system.ts';
import { events } from './event-log-host.ts';

// The migration that brings membership derives it from the events recorded before it
// (decision 010): owners, member events, and the reporters and current assignees of
// defects not deleted; a deleted project keeps no members.

const BEFORE_MEMBERSHIP = eventLogMigrations.findIndex((migration) => migration.id === 'event-log/members-2');

/** An event as the recorder stored it before this change (no subject_user_id column yet). */
async function recordAsBefore(db: Database, event: EventEnvelope, projectId: number | null) {
  await db.query(
    `INSERT INTO event_log.events (event_id, event_type, user_id, timestamp_text, occurred_at, data, project_id, defect_id)
     VALUES ($1, $2, $3, $4, now(), $5::json, $6, $7)`,
    [
      event.event_id,
      event.event_type,
      event.user_id,
      event.timestamp,
      JSON.stringify(event.data),
      projectId,
      (event.data.defect_id as number | undefined) ?? null,
    ],
  );
}

for (const mode of MODES) {
  describe(`membership backfill (${mode})`, () => {
    it('makes members of owners, added members, reporters and current assignees, and of nobody in a deleted project', async () => {
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'event-log-backfill-'));
      const databaseUrl =
        mode === 'postgres' ? `${TEST_POSTGRES_URL}/dc_test_backfill_${process.pid}_${Date.now()}` : undefined;
      const db = await connectDatabase({ databaseUrl, dataDir, poolSize: 2 });
      try {
        assert.ok(BEFORE_MEMBERSHIP > 0);
        await migrate(db, 'event_log', eventLogMigrations.slice(0, BEFORE_MEMBERSHIP));
        const history: Array<[EventEnvelope, number | null]> = [
          [events.userRegistered(50), null],
          [events.projectCreated(1, 10), 1],
          [events.memberAdded(1, 11, 10), 1],
          [events.memberAdded(1, 12, 10), 1],
          [events.memberRemoved(1, 12, 10), 1],
          [events.defectCreated(100, 1, 20), 1],
          [events.defectAssigned(100, 30, 10), 1],
          [events.defectAssigned(100, 31, 10), 1], // reassigned: 30 is no longer involved
          [events.defectCreated(101, 1, 21), 1],
          [events.defectDeleted(101, 10), 1], // its reporter, 21, is not a member
          [events.defectCreated(102, 1, 20), 1],
          [events.defectAssigned(102, 32, 10), 1],
          [events.defectUnassigned(102, 32, 10), 1],
          [events.projectCreated(2, 40), 2],
          [events.defectCreated(200, 2, 41), 2],
          [events.projectDeleted(2, 40), 2],
          [{ ...events.projectCreated(3, 1), data: { project_id: 3, name: 'bad', owner_id: 'x' } }, 3],
        ];
        for (const [event, projectId] of history) await recordAsBefore(db, event, projectId);

        await migrate(db, 'event_log', eventLogMigrations);

        const { rows } = await db.query<{ project_id: number; user_id: number }>(
          'SELECT project_id, user_id FROM event_log.project_members WHERE is_member ORDER BY project_id, user_id',
        );
        assert.deepEqual(
          rows.map((row) => [row.project_id, row.user_id]),
          [
            [1, 10],
            [1, 11],
            [1, 20],
            [1, 31],
          ],
        );
        // In the shared copy's shape (decision 008): the removal is kept, so that an older
        // member_added recorded late cannot undo it, and the deleted project has a tombstone.
        const removed = await db.query<{ project_id: number; user_id: number }>(
          'SELECT project_id, user_id FROM event_log.project_members WHERE NOT is_member',
        );
        assert.deepEqual(
          removed.rows.map((row) => [row.project_id, row.user_id]),
          [[1, 12]],
        );
        const tombstones = await db.query<{ project_id: number }>('SELECT project_id FROM event_log.deleted_projects');
        assert.deepEqual(
          tombstones.rows.map((row) => row.project_id),
          [2],
        );

        // Events recorded after the migration go through the shared handlers against those rows.
        const longAgo = '2000-01-01T00:00:00.000000';
        await db.transaction((tx) =>
          eventStore.recordMany(tx, [
            { ...events.memberAdded(1, 12, 10), timestamp: longAgo }, // older than 12's removal
            { ...events.memberAdded(2, 41, 40), timestamp: longAgo }, // project 2 is deleted
            events.memberAdded(1, 60, 10),
          ]),
        );
        const after = await db.query<{ project_id: number; user_id: number }>(
          'SELECT project_id, user_id FROM event_log.project_members WHERE is_member AND user_id IN (12, 41, 60)',
        );
        assert.deepEqual(
          after.rows.map((row) => [row.project_id, row.user_id]),
          [[1, 60]],
        );

        const subjects = await db.query<{ subject_user_id: number }>(
          "SELECT subject_user_id FROM event_log.events WHERE event_type LIKE 'user.%'",
        );
        assert.deepEqual(
          subjects.rows.map((row) => row.subject_user_id),
          [50],
        );
      } finally {
        await db.close();
        if (databaseUrl) await dropDatabase(databaseUrl);
        await fs.rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
