import { createOutbox } from '../../platform/events/outbox.ts';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { projectsMigrations } from './migrations.ts';
import { createProjectsService, type ProjectsService } from './projects-service.ts';
import { projectsRoutes } from './routes.ts';

/** The projects service as the host runs it; `projects` is for modules in the same process. */
export function createProjectsModule(deps: ServiceDeps): ServiceModule & { projects: ProjectsService } {
  const outbox = createOutbox({ db: deps.db, schema: 'projects' });
  const projects = createProjectsService({ db: deps.db, outbox });
  return { name: 'projects', migrations: projectsMigrations, outbox, routes: projectsRoutes(projects), projects };
}
