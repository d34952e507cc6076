/**
 * The presence contract (test/support/presence-contract.ts) against the
 * store of one process and the workers' store: `WorkerEventLog.presence()`
 * talking to the primary's real `PrimaryPresenceService` over in-process
 * channels that serialise every message as `process.send` does. A worker's
 * crash is its channel closing, as the primary sees a worker exit.
 * (Redis runs the same contract in presence-redis.test.ts.)
 */

import { PrimaryPresenceService } from '../src/cluster/presence-service.js';
import { WorkerEventLog } from '../src/cluster/worker-log.js';
import { LocalPresence } from '../src/presence/presence.js';
import { InProcessChannel } from './support/ipc-channel.js';
import { presenceContract, type PresenceCluster } from './support/presence-contract.js';

presenceContract({
  name: 'one process',
  maxNodes: 1,
  async open(): Promise<PresenceCluster> {
    const store = new LocalPresence();
    return { nodes: [store], names: ['local'], close: () => store.close() };
  },
});

presenceContract({
  name: 'workers (IPC)',
  maxNodes: 3,
  async open(count): Promise<PresenceCluster> {
    const service = new PrimaryPresenceService();
    const workers = Array.from({ length: count }, () => {
      const channel = new InProcessChannel((primary, message) => {
        if (message.herald === 'presence' || message.herald === 'presence-list') service.serve(primary, message);
      });
      const log = new WorkerEventLog(channel.worker);
      // As the primary does when the worker says it is ready.
      service.ready(channel.primary);
      return { channel, log, store: log.presence() };
    });
    return {
      nodes: workers.map((worker) => worker.store),
      names: workers.map((_, i) => `worker-${i}`),
      async crash(index) {
        const { channel, log } = workers[index]!;
        channel.disconnect();
        await log.close();
        service.remove(channel.primary);
      },
      async close() {
        for (const { channel, log, store } of workers) {
          await store.close();
          await log.close();
          channel.disconnect();
        }
      },
    };
  },
});
