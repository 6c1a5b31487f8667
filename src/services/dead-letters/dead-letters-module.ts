import type { ServiceDeps, ServiceModule } from '../../platform/service.ts';
import { ALL_CONSUMERS } from '../consumer-names.ts';
import { createDeadLetterService } from './dead-letter-service.ts';
import { deadLetterRoutes } from './routes.ts';

/** The admin API over every consumer's dead-letter queue; it owns no tables. */
export function createDeadLettersModule(deps: Pick<ServiceDeps, 'transport'>): ServiceModule {
  const service = createDeadLetterService({ queues: deps.transport.deadLetters, consumers: ALL_CONSUMERS });
  return { name: 'dead_letters', migrations: [], routes: deadLetterRoutes(service) };
}
