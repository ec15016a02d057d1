import { serveFunction } from '@platform/function-contract';
import { handler } from './handler.mjs';

serveFunction(handler);
