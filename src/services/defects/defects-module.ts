import { CONSUMER_NAMES } from '../consumer-names.ts';
import { createOutbox } from '../../platform/events/outbox.ts';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { createDefectsService } from './defects-service.ts';
import { defectsMigrations } from './migrations.ts';
import { createProjectDirectory, type ProjectLookup } from './project-directory.ts';
import { projectEventHandlers } from './project-events.ts';
import { defectsRoutes } from './routes.ts';

export function createDefectsModule(deps: ServiceDeps & { lookup: ProjectLookup }): ServiceModule {
  const outbox = createOutbox({ db: deps.db, schema: 'defects' });
  const projects = createProjectDirectory({ db: deps.db, lookup: deps.lookup });
  const defects = createDefectsService({ db: deps.db, outbox, projects });
  return {
    name: 'defects',
    migrations: defectsMigrations,
    outbox,
    routes: defectsRoutes(defects),
    consumers: [{ name: CONSUMER_NAMES.defectsProjectDirectory, handlers: projectEventHandlers(projects, defects) }],
  };
}
