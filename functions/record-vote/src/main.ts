import { serveFunction } from '@voting/function-contract';
import { definition } from './handler.js';

serveFunction(definition);
