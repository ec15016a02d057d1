import { serveFunction } from '@platform/function-contract';
import { definition } from './handler.js';

serveFunction(definition);
