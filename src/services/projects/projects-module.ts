import { CONSUMER_NAMES } from '../consumer-names.ts';
import { createOutbox } from '../../platform/events/outbox.ts';
import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { projectsMigrations } from './migrations.ts';
import { createProjectsService, type ProjectsService } from './projects-service.ts';
import { projectsRoutes } from './routes.ts';

/** The projects service as the host runs it; `projects` is for modules in the same process. */
export function createProjectsModule(deps: ServiceDeps): ServiceModule & { projects: ProjectsService } {
  const outbox = createOutbox({ db: deps.db, schema: 'projects' });
  const projects = createProjectsService({ db: deps.db, outbox });
  return {
    name: 'projects',
    migrations: projectsMigrations,
    outbox,
    routes: projectsRoutes(projects),
    // The users there are (a member must be one of them), from the auth service's events.
    consumers: [
      {
        name: CONSUMER_NAMES.projectsUserDirectory,
        handlers: {
          'user.registered': (tx, event) =>
            projects.rememberUser(tx, {
              id: event.data.user_id,
              username: event.data.username,
              full_name: event.data.full_name,
            }),
        },
      },
    ],
    projects,
  };
}
