import { DomainError } from '../../platform/http/errors.ts';

export const STATUSES = ['Новая', 'В работе', 'Решена', 'Закрыта', 'Отменена'] as const;
export type DefectStatus = (typeof STATUSES)[number];

export const PRIORITIES = ['Низкий', 'Средний', 'Высокий', 'Критический'] as const;
export type DefectPriority = (typeof PRIORITIES)[number];

export const INITIAL_STATUS: DefectStatus = 'Новая';
export const DEFAULT_PRIORITY: DefectPriority = 'Средний';

/** The workflow: from each status, the statuses a defect may move to next. */
export const TRANSITIONS: Readonly<Record<DefectStatus, readonly DefectStatus[]>> = {
  'Новая': ['В работе', 'Отменена'],
  'В работе': ['Решена', 'Отменена'],
  'Решена': ['Закрыта', 'В работе'],
  'Закрыта': ['В работе'],
  'Отменена': ['Новая'],
};

const quote = (status: string) => `«${status}»`;

export function assertTransitionAllowed(from: DefectStatus, to: DefectStatus): void {
  if (from === to) return;
  const allowed = TRANSITIONS[from];
  if (!allowed.includes(to)) {
    throw new DomainError(
      'DEFECT_BAD_TRANSITION',
      `A defect cannot move from ${quote(from)} to ${quote(to)}; allowed next: ${allowed.map(quote).join(', ')}`,
      { current_status: from, requested_status: to, allowed_next: allowed },
    );
  }
}

export function assertInitialStatus(status: DefectStatus): void {
  if (status !== INITIAL_STATUS) {
    throw new DomainError(
      'DEFECT_BAD_INITIAL_STATUS',
      `A new defect starts as ${quote(INITIAL_STATUS)}, not ${quote(status)}; move it through the workflow afterwards`,
    );
  }
}
