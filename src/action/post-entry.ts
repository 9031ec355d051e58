// Entry point of the action's post step (bundled to dist/action/post/index.js).
import { post } from './post.ts';
await post();
