import { createOutbox } from '../../platform/events/outbox.ts';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { projectsMigrations } from './migrations.ts';
import { createProjectsService } from './projects-service.ts';
import { projectsRoutes } from './routes.ts';

export function createProjectsModule(deps: ServiceDeps): ServiceModule {
  const outbox = createOutbox({ db: deps.db, schema: 'projects' });
  const projects = createProjectsService({ db: deps.db, outbox });
  return { name: 'projects', migrations: projectsMigrations, outbox, routes: projectsRoutes(projects) };
}
