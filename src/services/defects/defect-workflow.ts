import type { DefectPriority, DefectStatus } from '../../contracts/defect-values.ts';
import { badInitialStatus, badTransition } from './errors.ts';

export { PRIORITIES, STATUSES, type DefectPriority, type DefectStatus } from '../../contracts/defect-values.ts';

export const INITIAL_STATUS: DefectStatus = 'Новая';
export const DEFAULT_PRIORITY: DefectPriority = 'Средний';

/** The workflow: from each status, the statuses a defect may move to next. */
export const TRANSITIONS: Readonly<Record<DefectStatus, readonly DefectStatus[]>> = {
  Новая: ['В работе', 'Отменена'],
  'В работе': ['Решена', 'Отменена'],
  Решена: ['Закрыта', 'В работе'],
  Закрыта: ['В работе'],
  Отменена: ['Новая'],
};

export function assertTransitionAllowed(from: DefectStatus, to: DefectStatus): void {
  if (from === to) return;
  const allowed = TRANSITIONS[from];
  if (!allowed.includes(to)) {
    throw badTransition(from, to, allowed);
  }
}

export function assertInitialStatus(status: DefectStatus): void {
  if (status !== INITIAL_STATUS) {
    throw badInitialStatus(INITIAL_STATUS, status);
  }
}
