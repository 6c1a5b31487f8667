/** A defect's statuses and priorities as the seed names them: part of the API and the events. */
export const STATUSES = ['Новая', 'В работе', 'Решена', 'Закрыта', 'Отменена'] as const;
export type DefectStatus = (typeof STATUSES)[number];

export const PRIORITIES = ['Низкий', 'Средний', 'Высокий', 'Критический'] as const;
export type DefectPriority = (typeof PRIORITIES)[number];
