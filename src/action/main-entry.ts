// Entry point of the action's main step (bundled to dist/action/main/index.js).
import { main } from './main.ts';
await main();
