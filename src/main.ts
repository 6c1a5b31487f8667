import { startAllInOne } from './all-in-one.ts';
import { runMain } from './platform/main-entry.ts';

runMain('defect-control', startAllInOne);
