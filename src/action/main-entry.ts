// Entry point of the action's main step (bundled to dist/action/main/index.js).
import { run } from './main.ts';

await run();
