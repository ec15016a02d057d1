import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Capacity } from './capacity.js';
import { InvocationError } from './errors.js';
import { FunctionPool } from './pool.js';

/**
 * An edge's pools, one per function the controller runs, following its deploys: a pool added for
 * a new function, changed with an update, closed when the function is removed. Whatever watches
 * every pool (metrics, the dashboard, call records) says so once with `each`.
 */
export class FunctionPools extends Map<string, FunctionPool> {
  private readonly watchers: Array<(pool: FunctionPool) => void> = [];

  constructor(private readonly capacity: Capacity) {
    super();
    this.sync();
  }

  /** Runs `watch` for every pool: those there now and every one added later. */
  each(watch: (pool: FunctionPool) => void): void {
    this.watchers.push(watch);
    for (const pool of this.values()) watch(pool);
  }

  /** Makes the pools match the controller's functions now. */
  sync(): void {
    const specs = new Map(this.capacity.functions().map((spec) => [spec.name, spec]));
    for (const [name, pool] of this) {
      if (specs.has(name)) continue;
      this.delete(name);
      void pool.close(new InvocationError(404, `function "${name}" was removed`));
    }
    for (const spec of specs.values()) {
      const pool = this.get(spec.name);
      if (!pool) this.add(spec);
      else if (!sameSpec(pool.spec, spec)) pool.update(spec);
    }
  }

  private add(spec: FunctionSpec): void {
    const pool = new FunctionPool(spec, this.capacity);
    this.set(spec.name, pool);
    for (const watch of this.watchers) watch(pool);
  }
}

const sameSpec = (a: FunctionSpec, b: FunctionSpec) => JSON.stringify(a) === JSON.stringify(b);
