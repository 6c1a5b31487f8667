import type { EventHandlers } from '../../platform/events/event-consumer.ts';
import type { DefectsService } from './defects-service.ts';
import type { ProjectDirectory } from './project-directory.ts';

/**
 * What the defects service does on project.* events: keep its copy of projects current,
 * and delete a deleted project's defects (the inbox makes a second delivery a no-op).
 */
const textHeader = (value: unknown) => (typeof value === 'string' ? value : undefined);

export function projectEventHandlers(directory: ProjectDirectory, defects: DefectsService): EventHandlers {
  return {
    ...directory.handlers,
    'project.deleted': async (tx, event, context) => {
      await directory.handlers['project.deleted'](tx, event, context);
      const { afterCommit } = await defects.removeAllOfProject(tx, event.data.project_id, {
        userId: event.data.deleted_by,
        requestId: textHeader(context.headers['x-request-id']),
        traceparent: textHeader(context.headers.traceparent),
      });
      context.afterCommit(afterCommit);
    },
  };
}
